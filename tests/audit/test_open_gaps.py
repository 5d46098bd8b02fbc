"""Issue 17's open gaps: L16 from the data preparation a folder ships, and the recall harness over real PR
heads (here a tiny repository with the same refs layout as openai/parameter-golf)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from golfc.audit.dataprep import check_prep
from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.recall import Case, judge, main, render

from .conftest import RECORDS

SCRIPTS = Path(__file__).parent / "data" / "scripts"
PREP = '''import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--docs", default="docs_selected.jsonl")
parser.add_argument("--val-docs", type=int,
                    default=VAL_DOCS, help="documents kept for validation")
'''


@pytest.fixture
def record(tmp_path: Path) -> Path:
    folder = tmp_path / "2026-03-17_NaiveBaseline"
    shutil.copytree(RECORDS / "2026-03-17_NaiveBaseline", folder)
    return folder


def test_prep_script_with_ten_thousand_val_docs_is_an_l16_warning(record: Path) -> None:
    (record / "prepare_caseops_data.py").write_text(PREP.replace("VAL_DOCS", "10_000"))
    findings = [f for f in audit_folder(record).findings if f.rule == "L16"]
    assert [(f.severity, f.file, f.line) for f in findings] == [(Severity.WARN, "prepare_caseops_data.py", 5)]
    assert "10,000 validation documents" in findings[0].message and "#2127" in findings[0].message


def test_shell_setup_passing_val_docs_is_l16_and_the_canonical_split_is_not(record: Path) -> None:
    (record / "setup.sh").write_text("python prepare.py --val-docs 10000\npython prepare.py --val-docs=50000\n")
    (record / "prepare.py").write_text(PREP.replace("VAL_DOCS", "50_000") + "NUM_VAL_DOCS = 50_000\n")
    assert [(f.file, f.line) for f in check_prep(record)] == [("setup.sh", 1)]


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture
def challenge(tmp_path: Path) -> Path:
    """main with one record; refs/pull/7/head adds a folder with a leak, refs/pull/8/head a legal twin."""
    repo = tmp_path / "pg"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    base = repo / "records" / "track_10min_16mb"
    shutil.copytree(RECORDS / "2026-03-17_NaiveBaseline", base / "2026-03-17_NaiveBaseline")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "main")
    for pr, script in ((7, "ngram_exact_key_L7.py"), (8, "ngram_exact_context_legal.py")):
        _git(repo, "checkout", "-q", "-b", f"pr{pr}", "main")
        folder = base / f"2026-03-2{pr}_PR{pr}"
        shutil.copytree(RECORDS / "2026-03-17_NaiveBaseline", folder)
        shutil.copy(SCRIPTS / script, folder / "train_gpt.py")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"pr {pr}")
        _git(repo, "update-ref", f"refs/pull/{pr}/head", f"pr{pr}")
        _git(repo, "checkout", "-q", "main")
    return repo / ".git"


def test_recall_audits_the_folder_a_pr_adds_and_names_the_rule(challenge: Path) -> None:
    leak = judge(challenge, Case(7, "L7", "ruling"))
    assert leak.caught and leak.folders == ("2026-03-27_PR7",) and "L7 FAIL" in leak.found
    legal = judge(challenge, Case(8, "L7", "ruling"))
    assert not legal.caught and not any(label.endswith("FAIL") for label in legal.found)
    missing = judge(challenge, Case(99, "L7", "ruling"))
    assert not missing.caught and missing.note == "PR head not in this clone"
    table = render([leak, legal, missing], "a test repository")
    row = next(line for line in table.splitlines() if line.startswith("| #7 |"))
    assert "1 of 2 caught (50%)" in table and "L7 FAIL" in row and row.endswith("| yes |")


def test_recall_command_on_something_not_a_git_directory_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
