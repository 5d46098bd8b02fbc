"""Whole-folder audits: fixture records, cross-checks against submission.json, sizes, clocks, bad input."""

from __future__ import annotations

import base64
import json
import random
import shutil
from pathlib import Path

import pytest

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder

RECORDS = Path(__file__).parent / "data" / "records"
SCORED_SEEDS = {  # submission.json's per-seed scores (or its single score)
    "2026-03-17_NaiveBaseline": {1337: 1.2243657},
    "2026-03-19_SlidingWindowEval": {1337: 1.19250007},
    "2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA": {1337: 1.14597222, 42: 1.14656085, 7: 1.14491770},
    "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT": {42: 1.08079, 314: 1.08103, 999: 1.08118},
    "2026-04-29_SmearGateBOSFix_3Seed_1.06141": {42: 1.06128183, 314: 1.06086831, 1234: 1.06220261},
}


def rules(audit, severity: Severity) -> list[str]:
    return sorted(f.rule for f in audit.findings if f.severity == severity)


@pytest.mark.parametrize("name", sorted(SCORED_SEEDS))
def test_fixture_scores_match_submission_json(name: str) -> None:
    audit = audit_folder(RECORDS / name)
    scores = {run.seed: run.val_bpb for run in audit.primary}
    assert scores.keys() == SCORED_SEEDS[name].keys()
    for seed, claimed in SCORED_SEEDS[name].items():
        assert scores[seed] == pytest.approx(claimed, abs=5e-6)
    assert not [f for f in audit.findings if f.rule == "L22"]  # submission.json agrees with the logs
    assert audit.unusable == "no train_gpt.py" and audit.exit_code == 2  # fixtures ship no script
    assert audit.total_bytes_max is None


def test_single_seed_records_warn_l23() -> None:
    assert "L23" in rules(audit_folder(RECORDS / "2026-03-17_NaiveBaseline"), Severity.WARN)
    assert "L23" not in rules(
        audit_folder(RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT"), Severity.WARN
    )


def test_reruns_are_checked_but_originals_are_primary() -> None:
    audit = audit_folder(RECORDS / "2026-04-29_SmearGateBOSFix_3Seed_1.06141")
    assert len(audit.runs) == 6 and all("original" in r.path.name for r in audit.primary)
    late_hessians = [f for f in audit.findings if f.rule == "L19"]
    assert len(late_hessians) == 3 and all("original" in f.file for f in late_hessians)
    assert audit.stats["n"] == 3 and audit.stats["mean_bpb"] == pytest.approx(1.06145, abs=5e-6)


@pytest.mark.parametrize("name", sorted(SCORED_SEEDS))
def test_accepted_records_have_no_fail(name: str) -> None:
    assert rules(audit_folder(RECORDS / name), Severity.FAIL) == []


def test_wallclock_overshoot_of_the_last_step_is_info() -> None:
    audit = audit_folder(RECORDS / "2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA")
    assert rules(audit, Severity.INFO).count("L20") == 3


def test_forced_step_count_past_the_cap_fails(ttt_folder: Path) -> None:
    log = ttt_folder / "train_seed42.log"
    log.write_text(log.read_text().replace("train_time: 588047ms", "train_time: 601153ms"))
    audit = audit_folder(ttt_folder)
    assert any(f.rule == "L20" and "601.153" in f.message for f in audit.findings if f.severity == Severity.FAIL)


def test_train_time_under_the_logs_own_longer_cap_on_fewer_gpus_is_a_warning(ttt_folder: Path) -> None:
    """The 2026-03-17 LoRA TTT shape: one log ran 2400 s on 2 GPUs under its own 2400 s cap (issue 17, class 5)."""
    log = ttt_folder / "train_seed42.log"
    text = log.read_text().replace("train_time: 588047ms", "train_time: 2400107ms")
    text = text.replace("  max_wallclock_seconds: 600.0", "  max_wallclock_seconds: 2400.0")
    log.write_text(text.replace("  world_size: 8", "  world_size: 2"))
    audit = audit_folder(ttt_folder)
    [finding] = [f for f in audit.findings if f.rule == "L20" and f.file == "train_seed42.log"]
    assert finding.severity == Severity.WARN and "own wall-clock cap of 2400 s on 2 GPU(s)" in finding.message


def test_train_time_over_600_s_of_a_non_record_submission_is_a_warning(ttt_folder: Path) -> None:
    log = ttt_folder / "train_seed42.log"
    log.write_text(log.read_text().replace("train_time: 588047ms", "train_time: 900000ms"))
    data = json.loads((ttt_folder / "submission.json").read_text())
    data["track"] = "non-record-16mb"
    (ttt_folder / "submission.json").write_text(json.dumps(data, indent=2))
    audit = audit_folder(ttt_folder)
    [finding] = [f for f in audit.findings if f.rule == "L20" and f.file == "train_seed42.log"]
    assert finding.severity == Severity.WARN and "non-record" in finding.message


@pytest.fixture
def ttt_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ttt"
    shutil.copytree(RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", folder)
    (folder / "train_gpt.py").write_text("print('wrapper stand-in')\n" + "#" * 16000 + "\n")
    return folder


def test_folder_with_script_is_usable_and_sized(ttt_folder: Path) -> None:
    audit = audit_folder(ttt_folder)
    assert audit.unusable is None and audit.verdict == "WARN"  # WARN: Hessians end after 600 s
    assert audit.script is not None and audit.script.shipped_bytes == 16027
    # a readable script counts packed the records' way (python-minifier drops the comment) when that is smaller
    assert audit.code is not None and audit.code.shipped == 16027 and audit.code.counted < 200
    assert audit.total_bytes_max == audit.code.counted + 15976638
    assert audit.exit_code == 0


def incompressible_script(size: int) -> str:
    """A script whose bytes neither python-minifier nor LZMA can take away: one random string literal."""
    text = base64.b85encode(random.Random(0).randbytes(size * 4 // 5)).decode()
    return f"x = {text!r}\n"


def test_over_cap_with_the_shipped_file_fails(ttt_folder: Path) -> None:
    (ttt_folder / "train_gpt.py").write_text(incompressible_script(30000))
    audit = audit_folder(ttt_folder)
    assert "L22" in rules(audit, Severity.FAIL) and audit.exit_code == 1


def test_readable_script_over_cap_only_as_shipped_warns_with_both_counts(ttt_folder: Path) -> None:
    """The records' case: readable train_gpt.py, counted packed; over the cap only as shipped (issue 17, class 3)."""
    (ttt_folder / "train_gpt.py").write_text("x = 1\n" + "# a long explanation\n" * 2000)
    audit = audit_folder(ttt_folder)
    assert "L22" not in rules(audit, Severity.FAIL)
    warnings = [f.message for f in audit.findings if f.rule == "L22" and f.severity == Severity.WARN]
    assert warnings and all("is not the counted file" in m and "python-minifier + lzma" in m for m in warnings)
    assert (
        audit.code is not None and f"{audit.code.shipped:,}" in warnings[0] and f"{audit.code.packed:,}" in warnings[0]
    )


def test_submission_json_mismatch_warns(ttt_folder: Path) -> None:
    data = json.loads((ttt_folder / "submission.json").read_text())
    data["seed_results"]["42"]["val_bpb"] = 1.07
    data["seed_results"]["7"] = {"val_bpb": 1.08}
    data["val_bpb"] = 1.0
    (ttt_folder / "submission.json").write_text(json.dumps(data))
    audit = audit_folder(ttt_folder)
    messages = [f.message for f in audit.findings if f.rule in ("L22", "L23")]
    assert any("seed_results[42].val_bpb = 1.07" in m for m in messages)
    assert any("seed 7" in m for m in messages)
    assert any("mean of the logged seeds" in m for m in messages)


def test_invalid_json_and_scoreless_log_are_reported(ttt_folder: Path) -> None:
    (ttt_folder / "submission.json").write_text("{not json")
    (ttt_folder / "train_seed5.log").write_text(
        "seed:5\nstep:10/20000 train_loss:3.0 train_time:10ms step_avg:1.00ms\n"
    )
    audit = audit_folder(ttt_folder)
    problems = {(p.file, p.message.split(":")[0]) for p in audit.problems()}
    assert ("submission.json", "invalid JSON") in problems
    assert ("train_seed5.log", "log has no score (no val_bpb from a final evaluation); not counted") in problems
    assert len(audit.primary) == 3


def test_clock_and_token_count_findings(ttt_folder: Path) -> None:
    log = ttt_folder / "train_seed999.log"
    text = log.read_text()
    assert "val_tokens: 40540160" in text and "eval_time:318003ms" in text
    text = text.replace("val_tokens: 40540160", "val_tokens: 40000000")
    log.write_text(text.replace("eval_time:318003ms", "eval_time:818003ms"))
    audit = audit_folder(ttt_folder)
    assert "L15" in rules(audit, Severity.WARN)
    eval_fails = [f for f in audit.findings if f.rule == "L20" and f.severity == Severity.FAIL]
    assert [(f.file, f.message) for f in eval_fails] == [
        ("train_seed999.log", "eval time 920.5 s is over the 600 s budget")
    ]


def test_eval_over_budget_fails(ttt_folder: Path) -> None:
    log = ttt_folder / "train_seed999.log"
    log.write_text(log.read_text() + "total_eval_time:612.5s\n")
    audit = audit_folder(ttt_folder)
    assert any(f.rule == "L20" and "612.5" in f.message for f in audit.findings if f.severity == Severity.FAIL)


def test_missing_folder_is_unusable(tmp_path: Path) -> None:
    audit = audit_folder(tmp_path / "nope")
    assert audit.exit_code == 2 and audit.unusable == "no such folder"


def test_leaky_script_fails_the_folder(ttt_folder: Path) -> None:
    leaky = Path(__file__).parent / "data" / "scripts" / "ttt_train_first_L1.py"
    shutil.copy(leaky, ttt_folder / "train_gpt.py")
    audit = audit_folder(ttt_folder)
    assert audit.verdict == "FAIL" and audit.exit_code == 1
    assert ("L1", "train_gpt.py", 25) in [(f.rule, f.file, f.line) for f in audit.findings]
