"""``golfc audit`` on the command line: report, --json, --against, exit codes, several folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from golfc.audit.command import audit

RECORDS = Path(__file__).parent / "data" / "records"
SCRIPTS = Path(__file__).parent / "data" / "scripts"
TTT = RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT"


def invoke(*args: str):
    app = typer.Typer()
    app.command()(audit)
    return CliRunner().invoke(app, list(args), terminal_width=200)


@pytest.fixture
def with_script(tmp_path: Path) -> Path:
    folder = tmp_path / "sub"
    shutil.copytree(TTT, folder)
    shutil.copy(SCRIPTS / "ttt_score_first_legal.py", folder / "train_gpt.py")
    return folder


def test_json_is_exactly_one_object_with_the_contract_keys(with_script: Path) -> None:
    result = invoke(str(with_script), "--json", "--against", "1.2611,1.2614,1.2612")
    document = json.loads(result.stdout)["audits"][0]
    assert {
        "verdict",
        "findings",
        "seeds",
        "code_bytes",
        "unwrapped_code_bytes",
        "total_bytes_max",
        "stats",
    } <= document.keys()
    assert document["verdict"] == "WARN" and result.exit_code == 0
    seed = document["seeds"][0]
    assert {"seed", "val_bpb", "val_loss", "artifact_bytes", "train_time_s", "eval_time_s", "log"} <= seed.keys()
    assert {f["rule"] for f in document["findings"]} >= {"L19"}
    assert all({"rule", "severity", "message", "file", "line"} <= f.keys() for f in document["findings"])
    assert document["code_bytes"] == document["unwrapped_code_bytes"] == (with_script / "train_gpt.py").stat().st_size
    assert document["stats"]["against"]["record"]["pass"] is True


def test_fail_exits_1(with_script: Path) -> None:
    shutil.copy(SCRIPTS / "ttt_train_first_L1.py", with_script / "train_gpt.py")
    result = invoke(str(with_script))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "train_gpt.py:25" in result.stdout


def test_folder_without_script_exits_2_after_reporting_the_rest() -> None:
    result = invoke(str(TTT))
    assert result.exit_code == 2
    assert "no train_gpt.py" in result.stderr
    assert "1.08079352" in result.stdout  # the seeds table still comes


def test_several_folders_end_with_a_summary(with_script: Path, tmp_path: Path) -> None:
    result = invoke(str(with_script), str(tmp_path / "missing"), "--json")
    document = json.loads(result.stdout)
    assert [a["unusable"] for a in document["audits"]] == [None, "no such folder"]
    assert result.exit_code == 2
    text = invoke(str(with_script), str(RECORDS / "2026-03-17_NaiveBaseline"))
    assert "summary" in text.stdout and text.exit_code == 2


def test_each_input_problem_is_one_unwrapped_line_naming_folder_and_file(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-with-a-rather-long-name-so-that-an-80-column-console-would-wrap-its-lines"
    folder.mkdir()
    (folder / "train_gpt.py").write_text("x = 1\n")
    (folder / "submission.json").write_text("{not json")
    result = invoke(str(folder))
    lines = result.stderr.strip().splitlines()
    assert f"{folder / 'submission.json'}:1: invalid JSON: Expecting property name enclosed in double quotes" in lines
    assert f"{folder}: no training logs in the folder" in lines
    assert all(line.startswith(str(folder)) for line in lines)


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_an_empty_script_without_logs_is_unusable_in_one_line(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(content)
    result = invoke(str(folder))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{folder / 'train_gpt.py'}: is empty: expected the submission's training script"]
    assert result.stdout == ""  # no report box for a folder with nothing to report


def test_an_empty_script_with_logs_is_unusable_and_the_logs_are_still_reported(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    shutil.copytree(TTT, folder)
    (folder / "train_gpt.py").write_text("")
    result = invoke(str(folder))
    assert result.exit_code == 2
    assert f"{folder / 'train_gpt.py'}: is empty: expected the submission's training script" in result.stderr
    assert "1.08079352" in result.stdout


def test_a_missing_path_prints_one_line_and_no_report(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{tmp_path / 'nope'}: no such folder"]
    assert result.stdout == ""


def test_a_claimed_record_that_fails_the_record_test_is_an_L23_fail(with_script: Path) -> None:
    failed = invoke(str(with_script), "--json", "--against", "1.0611,1.0614,1.0620")
    document = json.loads(failed.stdout)
    [finding] = [f for f in document["audits"][0]["findings"] if f["rule"] == "L23" and f["severity"] == "FAIL"]
    assert finding["message"].startswith("not a record against 1.0611,1.0614,1.0620: mean +0.0")
    assert document["verdict"] == "FAIL" and document["exit_code"] == 1 and failed.exit_code == 1
    text = invoke(str(with_script), "--against", "1.0611,1.0614,1.0620")
    assert text.exit_code == 1 and "not a record against" in text.stdout
    passed = json.loads(invoke(str(with_script), "--json", "--against", "1.2611,1.2614,1.2612").stdout)
    assert not [f for f in passed["audits"][0]["findings"] if f["rule"] == "L23" and "record" in f["message"]]
    assert passed["exit_code"] == 0


def test_a_record_test_that_cannot_run_is_an_L23_warn(with_script: Path) -> None:
    for log in ("train_seed314.log", "train_seed999.log"):
        (with_script / log).unlink()
    result = invoke(str(with_script), "--json", "--against", "1.2611,1.2614,1.2612")
    findings = json.loads(result.stdout)["audits"][0]["findings"]
    assert any(f["rule"] == "L23" and f["severity"] == "WARN" and "record test against" in f["message"]
               and "not run" in f["message"] for f in findings)
    assert result.exit_code == 0
