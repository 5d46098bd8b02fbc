"""Effective configuration: defaults, the README's run command, the logs' hyperparameters; reachability."""

from __future__ import annotations

import ast
from pathlib import Path

from golfc.audit.config import UNKNOWN, build_config, readme_environment
from golfc.audit.findings import Severity
from golfc.audit.static import check_source

DATA = Path(__file__).parent / "data"
GATED = (DATA / "scripts" / "flag_gated_slot.py").read_text()

KNOBS = """
import os
class Hyperparameters:
    seed = int(os.environ.get("SEED", 1337))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
    qk_gain_init = float(os.environ.get("QK_GAIN_INIT", 1.5))
USE_CACHE = os.environ.get("USE_CACHE", "0") == "1"
DEBUG = False
"""


def config(readme: dict[str, str] | None = None, logs: dict[str, object] | None = None):
    return build_config([ast.parse(KNOBS)], readme or {}, logs or {})


def test_defaults_are_evaluated() -> None:
    cfg = config()
    assert cfg.attribute_value("seed") == 1337
    assert cfg.attribute_value("ttt_enabled") is False
    assert cfg.attribute_value("qk_gain_init") == 1.5
    assert cfg.global_value("USE_CACHE") is False
    assert cfg.global_value("DEBUG") is False
    assert cfg.attribute_value("nothing_like_this") is UNKNOWN


def test_readme_then_logs_override_the_defaults() -> None:
    cfg = config({"TTT_ENABLED": "1", "QK_GAIN_INIT": "5.25", "USE_CACHE": "1"}, {"qk_gain_init": 5.0})
    assert cfg.attribute_value("ttt_enabled") is True
    assert cfg.global_value("USE_CACHE") is True
    assert cfg.attribute_value("qk_gain_init") == 5.0
    assert cfg.attributes["qk_gain_init"].source == "log"


def test_readme_commands_of_the_fixtures() -> None:
    records = DATA / "records"
    ttt = readme_environment((records / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT/README.md").read_text())
    assert ttt == {"SEED": "42", "QK_GAIN_INIT": "5.25", "TTT_ENABLED": "1", "TTT_LR": "0.005", "TTT_EPOCHS": "3"}
    smear = readme_environment((records / "2026-04-29_SmearGateBOSFix_3Seed_1.06141/README.md").read_text())
    assert smear["SMEAR_GATE_ENABLED"] == "1" and smear["GPTQ_RESERVE_SECONDS"] == "8.0"
    baseline = readme_environment((records / "2026-03-17_NaiveBaseline/README.md").read_text())
    assert baseline["MAX_WALLCLOCK_SECONDS"] == "600" and "RUN_ID" in baseline


def test_leak_behind_a_flag_that_is_off_is_info() -> None:
    findings = check_source(GATED).findings
    assert findings and all(f.severity == Severity.INFO for f in findings)
    slot = next(f for f in findings if f.rule == "L12")
    assert "SLOT_ENABLED=0 (default)" in slot.message


def test_readme_command_turns_the_leak_on() -> None:
    findings = check_source(GATED, readme_env={"SLOT_ENABLED": "1"}).findings
    assert ("L12", Severity.FAIL) in [(f.rule, f.severity) for f in findings]


def test_logged_hyperparameters_turn_the_leak_on() -> None:
    findings = check_source(GATED, log_values={"slot_enabled": True}).findings
    assert ("L12", Severity.FAIL) in [(f.rule, f.severity) for f in findings]


def test_never_called_function_is_info() -> None:
    findings = check_source(GATED).findings
    dead = next(f for f in findings if f.rule == "L1")
    assert dead.severity == Severity.INFO and "never called" in dead.message


def test_code_after_return_and_if_false_are_dead() -> None:
    source = """
import requests, torch
def main(model, val_tokens):
    if False:
        model(val_tokens).sum().backward()
    return score(model, val_tokens)
    requests.get("https://example.com/hints")
def score(model, val_tokens):
    with torch.no_grad():
        nll_sum = 0
        nll_sum += model(val_tokens).sum()
    return nll_sum
main(None, None)
"""
    findings = check_source(source).findings
    assert [f.severity for f in findings] == [Severity.INFO, Severity.INFO]
    assert {f.line for f in findings} == {5, 7}
    assert any("behind `False`" in f.message for f in findings)
    assert any("unreachable after line 6" in f.message for f in findings)


def test_unknown_condition_keeps_the_branch_live() -> None:
    source = """
import sys, torch
def main(model, val_tokens):
    if len(sys.argv) > 3:
        model(val_tokens).sum().backward()
    with torch.no_grad():
        nll_sum = 0
        nll_sum += model(val_tokens).sum()
main(None, None)
"""
    assert [f.severity for f in check_source(source).findings] == [Severity.FAIL]
