"""The checks of one rerun from its log, files and golfc's clock: phases, clocks (L20), size (L22), the BPB
denominator (L17) and the statistics (L23)."""

from __future__ import annotations

import json

import pytest

from golfc.audit.logs import parse_log
from golfc.errors import GolfcError
from golfc.verify.checks import clock_checks, denominator_check, recompute_denominator, score_ledger_check, size_check
from golfc.verify.phases import PhaseTracker
from golfc.verify.report import load_reference, statistics
from golfc.verify.runs import Limits, SeedRun

LOG = """seed:7
warmup_step:1/2
warmup_step:2/2
step:1/3 train_loss:5.0000 train_time:100ms step_avg:100.00ms
step:2/3 train_loss:4.9000 train_time:200ms step_avg:100.00ms
step:3/3 train_loss:4.8000 train_time:{train_ms}ms step_avg:100.00ms
step:3/3 val_loss:4.7000 val_bpb:2.8000 train_time:{train_ms}ms step_avg:100.00ms
Serialized model int8+zlib: {artifact} bytes
Code size: {code} bytes
Total submission size int8+zlib: {total} bytes
final_int8_zlib_roundtrip val_loss:4.6000 val_bpb:2.7000 eval_time:{eval_ms}ms
final_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}
"""


def _seed_run(tmp_path, train_ms=300, eval_ms=50, artifact=1000, logged_artifact=None, loss=4.6, bpb=2.7,
              times=None):
    program = tmp_path / "train_gpt.py"
    program.write_text("print('hi')\n")
    code = program.stat().st_size
    run = SeedRun(7, tmp_path / "seed_7", status="ok", returncode=0)
    run.workdir.mkdir()
    (run.workdir / "final_model.int8.ptz").write_bytes(bytes(artifact))
    logged = artifact if logged_artifact is None else logged_artifact
    text = LOG.format(train_ms=train_ms, eval_ms=eval_ms, artifact=logged, code=code, total=logged + code,
                      loss=loss, bpb=bpb)
    run.console.write_text(text)
    lines = text.splitlines()
    for t, line in zip(times or [float(i) for i in range(len(lines))], lines):
        run.tracker.feed(t, line)
    return run, parse_log(run.console), program


def test_phase_ledger_from_the_lines():
    tracker = PhaseTracker()
    times = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 8.0, 9.0, 9.5]
    for t, line in zip(times, LOG.format(train_ms=300, eval_ms=50, artifact=1, code=1, total=2, loss=1.0,
                                         bpb=1.0).splitlines()):
        tracker.feed(t, line)
    phases = {p.name: (p.start_s, p.end_s, p.logged_s) for p in tracker.phases(10.0)}
    assert phases == {"setup": (0.0, 0.5, None), "compile_warmup": (0.5, 2.0, None), "training": (2.0, 6.0, None),
                      "serialization": (6.0, 8.0, None), "final_int8_zlib_roundtrip": (8.0, 9.5, 0.05)}
    assert tracker.train_curve == [(1, 5.0), (2, 4.9), (3, 4.8)] and tracker.val_curve == [(3, 4.7)]
    assert tracker.train_wall_s() == 4.0 and tracker.eval_wall_s() == 1.5
    assert [tracker.phase_at(t) for t in (0.2, 1.5, 3.0, 7.0, 9.0)] == ["setup", "setup", "training", "export", "eval"]


def test_clocks_fail_on_the_logs_markers_and_warn_on_golfcs_own(tmp_path):
    limits = Limits(train_s=600, eval_s=600)
    run, log, _ = _seed_run(tmp_path, train_ms=700_000)
    train, evaluation = clock_checks(run, log, limits, 8)
    assert (train.rule, train.verdict) == ("L20", "FAIL") and "log 700.000 s" in train.evidence
    assert evaluation.verdict == "PASS"
    # the log says 0.3 s, but golfc saw 4 s pass between the warmup's end and the last step line: past 2 s
    (tmp_path / "b").mkdir()
    run, log, _ = _seed_run(tmp_path / "b")
    train, evaluation = clock_checks(run, log, Limits(train_s=2, eval_s=600), 1)
    assert train.verdict == "WARN" and "golfc's clock 4.000 s" in train.evidence
    _, evaluation = clock_checks(run, log, Limits(train_s=600, eval_s=0.01), 1)
    assert evaluation.verdict == "FAIL"  # the log's eval_time, 0.05 s


def test_size_counts_the_shipped_script_and_the_seeds_artifact(tmp_path):
    run, log, program = _seed_run(tmp_path)
    result = size_check(run, log, program)
    assert result.verdict == "PASS" and result.details["total_bytes"] == 1000 + program.stat().st_size
    (tmp_path / "c").mkdir()
    run, log, program = _seed_run(tmp_path / "c", logged_artifact=999)
    result = size_check(run, log, program)
    assert (result.rule, result.verdict) == ("L22", "WARN") and "log says artifact 999" in result.evidence
    (tmp_path / "d").mkdir()
    run, log, program = _seed_run(tmp_path / "d", artifact=16_000_000)
    assert size_check(run, log, program).verdict == "FAIL"


def test_bpb_denominator_recomputed_from_tokenizer_and_val_tokens(tmp_path, small_data):
    den = recompute_denominator(small_data["DATA_PATH"], small_data["TOKENIZER_PATH"], int(small_data["VOCAB_SIZE"]),
                                None, 64)
    assert den.tokens == 2048 and den.bytes > den.tokens  # about 1.6 bytes per token on the tiny tokenizer
    loss = 4.6
    honest = loss / den.nats_per_bpb
    _, log, _ = _seed_run(tmp_path, loss=loss, bpb=honest)
    result = denominator_check(7, log, den)
    assert (result.rule, result.verdict) == ("L17", "PASS"), result.evidence
    (tmp_path / "e").mkdir()
    _, log, _ = _seed_run(tmp_path / "e", loss=loss, bpb=honest / 1.1)  # ten per cent more bytes claimed
    result = denominator_check(7, log, den)
    assert result.verdict == "WARN"  # counted by the seq_len cut: golfc's count may differ from the run's
    assert abs(result.details["implied_bytes"] - den.bytes * 1.1) <= 1
    exact = recompute_denominator(small_data["DATA_PATH"], small_data["TOKENIZER_PATH"],
                                  int(small_data["VOCAB_SIZE"]), 2048, 64)
    assert exact.bytes == den.bytes and denominator_check(7, log, exact).verdict == "FAIL"


def test_data_and_tokenizer_paths_from_the_runs_own_log(tmp_path):
    from golfc.verify.checks import paths_from_log

    text = ("val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/fineweb_1024_bpe.model\n"
            "val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632\n"
            "hparams: vocab_size=1024 num_layers=9\n")
    assert paths_from_log(text, tmp_path) == {
        "TOKENIZER_PATH": str(tmp_path / "data/tokenizers/fineweb_1024_bpe.model"),
        "DATA_PATH": str(tmp_path / "data/datasets/fineweb10B_sp1024"), "VOCAB_SIZE": "1024"}
    assert paths_from_log("val_loader:shards pattern=/abs/d/fineweb_val_*.bin tokens:5", tmp_path) == {
        "DATA_PATH": "/abs/d"}


def test_statistics_welch_against_values_and_reports(tmp_path):
    seeds = [{"val_bpb": b, "val_loss": b * 1.7} for b in (1.050, 1.051, 1.049)]
    stats, checks = statistics(seeds, load_reference(None, "1.070,1.071,1.069"))
    assert stats["n"] == 3 and stats["nats_per_bpb"] == pytest.approx(1.7)
    assert stats["against"]["delta_nats"] == pytest.approx(-0.034, abs=1e-9)  # 0.02 bpb x 1.7 nats per bpb
    by_name = {c.name: c for c in checks}
    assert by_name["seeds"].verdict == "PASS" and by_name["record_test"].verdict == "PASS"
    assert stats["against"]["record"]["p"] < 0.01 and stats["against"]["progression"]["p"] < 0.25
    _, checks = statistics(seeds, load_reference(None, "1.052,1.053,1.051"))  # 0.0034 nats better: no record
    assert {c.name: c.verdict for c in checks}["record_test"] == "FAIL"
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"seeds": [{"val_bpb": 1.07, "val_loss": 1.819}, {"val_bpb": 1.071}]}))
    sample, source = load_reference(str(report), None)
    assert sample.bpb == (1.07, 1.071) and source == str(report)
    submission = tmp_path / "submission.json"
    submission.write_text(json.dumps({"seed_results": {"1": {"val_bpb": 1.08}, "2": {"val_bpb": 1.081}}}))
    assert load_reference(str(submission), None)[0].bpb == (1.08, 1.081)
    for bad in ((None, "1.0,x"), (str(tmp_path / "missing.json"), None), (str(report), "1.0")):
        with pytest.raises(GolfcError):
            load_reference(*bad)
    _, checks = statistics(seeds[:1], None)
    assert {c.name: c.verdict for c in checks} == {"seeds": "WARN"}


def test_loss_curves_png_and_its_absence_without_matplotlib(tmp_path, monkeypatch):
    import sys

    from golfc.verify.report import plot_curves

    report = {"seeds": [{"seed": 1, "curves": {"train": [[1, 5.0], [2, 4.5]], "val": [[2, 4.6]]}},
                        {"seed": 2, "curves": {"train": [], "val": []}}]}
    assert plot_curves(report, tmp_path / "curves.png") == "curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not importable
    assert plot_curves(report, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


@pytest.mark.parametrize(("line", "verdict", "says"), [
    ("score_ledger scored:159 adapted:127 declared:127 violations:0", "PASS", "learned only from earlier targets"),
    ("score_ledger scored:159 adapted:0 declared:0 violations:0", "PASS", "0 after an evaluation-time update"),
    ("score_ledger scored:159 adapted:127 declared:127 violations:32", "FAIL", "32 of them after an update computed"),
    ("score_ledger scored:159 adapted:127 declared:0 violations:0", "WARN", "declared no position"),
    ("final_int8_zlib_roundtrip val_loss:4.6000 val_bpb:2.7000", "SKIP", "no score_ledger line"),
])
def test_the_score_ledger_line_gives_the_l2_verdict(line, verdict, says):
    """The final evaluation's score_ledger line (core/data): violations fail score-first (L2); an adapting scorer
    that declares nothing is a WARN (only the probes can tell); a program without the line is skipped."""
    check = score_ledger_check(7, f"seed:7\n{line}\n")
    assert (check.name, check.rule, check.verdict) == ("score_ledger", "L2", verdict)
    assert says in check.evidence and check.evidence.startswith("seed 7: ")
