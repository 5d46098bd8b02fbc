"""``golfc audit --explain RULE`` and docs/rules.md: every rule the audit reports is explained, from one table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from golfc.audit.rulebook import RULES, lookup, render_markdown, render_text

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_IDS = [f"C{i}" for i in range(1, 5)] + [f"L{i}" for i in range(1, 24)] + ["NET", "INPUT"]


def test_every_rule_id_is_in_the_rulebook_once_with_all_three_parts() -> None:
    assert [rule.id for rule in RULES] == EXPECTED_IDS
    for rule in RULES:
        assert rule.title and len(rule.meaning) > 40 and len(rule.evidence) > 30 and len(rule.ruling) > 20


def test_every_rule_id_the_audit_code_emits_is_explained() -> None:
    emitted: set[str] = set()
    for path in (ROOT / "golfc" / "audit").rglob("*.py"):
        emitted |= set(re.findall(r'"(L\d{1,2})"', path.read_text()))
    assert emitted and all(lookup(rule_id) for rule_id in emitted)


def test_docs_rules_md_is_the_rendered_rulebook() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == render_markdown()


def test_lookup_is_case_insensitive_and_rejects_unknown_ids() -> None:
    assert lookup("l13").id == "L13"
    with pytest.raises(KeyError, match="unknown rule 'L99'"):
        lookup("L99")


def golfc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("golfc")), *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_explain_prints_meaning_evidence_and_ruling() -> None:
    result = golfc("audit", "--explain", "L1")
    assert result.returncode == 0
    assert result.stdout == render_text(lookup("L1"))
    for heading in ("What it means", "Evidence golfc needs", "Ruling behind it"):
        assert heading in result.stdout
    assert "#402" in result.stdout


def test_explain_of_an_unknown_rule_is_one_line_and_exit_2() -> None:
    result = golfc("audit", "--explain", "L99")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "unknown rule 'L99'" in result.stderr


def test_audit_without_a_folder_is_a_usage_error_and_exit_2() -> None:
    result = golfc("audit")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Error: Missing argument 'FOLDERS...' (or give --explain RULE)." in result.stderr
