"""Every fixture log parses to the figures its submission.json states; other log shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from golfc.audit.logs import find_logs, parse_log

RECORDS = Path(__file__).parent / "data" / "records"

# (folder, log) → (seed, val_bpb, val_loss, artifact_bytes, total_bytes, code_bytes, steps, train_s, eval_s, val_tokens)
EXPECTED = {
    ("2026-03-17_NaiveBaseline", "train.log"): (
        1337,
        1.22436570,
        2.07269931,
        15815847,
        15863489,
        47642,
        13780,
        600.038,
        1.401,
        63779840,
    ),
    ("2026-03-19_SlidingWindowEval", "train.log"): (
        1337,
        1.19250007,
        2.01348383,
        15816489,
        15874829,
        58340,
        13450,
        600.028,
        69.881,
        62021632,
    ),
    ("2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA", "train_seed1337.log"): (
        1337,
        1.14597222,
        1.93492097,
        15810407,
        15862650,
        52243,
        7379,
        600.075,
        155.204,
        62021632,
    ),
    ("2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA", "train_seed42.log"): (
        42,
        1.14656085,
        1.93591485,
        15865061,
        15917304,
        52243,
        7385,
        600.099,
        154.937,
        62021632,
    ),
    ("2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA", "train_seed7.log"): (
        7,
        1.14491770,
        1.93314046,
        15892664,
        15944907,
        52243,
        7393,
        600.101,
        155.292,
        62021632,
    ),
    ("2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", "train_seed42.log"): (
        42,
        1.08079352,
        2.79180191,
        15975300,
        15991930,
        16630,
        4550,
        588.047,
        513.001,
        40540160,
    ),
    ("2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", "train_seed314.log"): (
        314,
        1.08103103,
        2.79241542,
        15976325,
        15992919,
        16594,
        4557,
        588.119,
        514.647,
        40540160,
    ),
    ("2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", "train_seed999.log"): (
        999,
        1.08118408,
        2.79281076,
        15976638,
        15993232,
        16594,
        4555,
        588.014,
        420.515,
        40540160,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed42_pr1851_original.log"): (
        42,
        1.06128183,
        2.32247803,
        15920836,
        15952086,
        31250,
        4900,
        599.623,
        519.5,
        47851520,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed314_original.log"): (
        314,
        1.06086831,
        2.32157310,
        15921169,
        15952419,
        31250,
        4960,
        599.613,
        525.6,
        47851520,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed1234_original.log"): (
        1234,
        1.06220261,
        2.32449303,
        15921440,
        15952690,
        31250,
        4958,
        599.544,
        479.6,
        47851520,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed42_rerun_gptq8s.log"): (
        42,
        1.06083288,
        2.32149556,
        15918316,
        15949701,
        31385,
        4942,
        592.054,
        525.5,
        47851520,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed314_rerun_gptq8s.log"): (
        314,
        1.06090748,
        2.32165882,
        15920392,
        15951777,
        31385,
        4921,
        592.045,
        429.5,
        47851520,
    ),
    ("2026-04-29_SmearGateBOSFix_3Seed_1.06141", "train_seed1234_rerun_gptq8s.log"): (
        1234,
        1.06248776,
        2.32511706,
        15920583,
        15951968,
        31385,
        4902,
        592.065,
        481.2,
        47851520,
    ),
}


def test_every_fixture_log_is_found() -> None:
    found = {(folder.name, log.name) for folder in RECORDS.iterdir() for log in find_logs(folder)}
    assert found == set(EXPECTED)


@pytest.mark.parametrize(("folder", "log"), sorted(EXPECTED))
def test_fixture_log_figures(folder: str, log: str) -> None:
    run = parse_log(RECORDS / folder / log)
    seed, bpb, loss, artifact, total, code, steps, train_s, eval_s, tokens = EXPECTED[(folder, log)]
    assert (run.seed, run.val_bpb, run.val_loss) == (seed, pytest.approx(bpb, abs=1e-9), pytest.approx(loss, abs=1e-9))
    assert (run.artifact_bytes, run.total_bytes, run.code_bytes) == (artifact, total, code)
    assert (run.steps, run.val_tokens) == (steps, tokens)
    assert run.train_time_s == pytest.approx(train_s) and run.eval_time_s == pytest.approx(eval_s)
    assert run.step_avg_ms is not None and run.step_avg_ms > 0


def test_score_lines_of_each_family() -> None:
    labels = {parse_log(RECORDS / folder / log).score_label for folder, log in EXPECTED}
    assert labels == {"final_int8_zlib_roundtrip_exact", "quantized_ttt", "quantized_ttt_phased"}


def test_hyperparameters_block_is_read() -> None:
    run = parse_log(RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT" / "train_seed42.log")
    assert run.hyperparameters["ttt_enabled"] is True
    assert run.hyperparameters["qk_gain_init"] == 5.25
    assert run.hessian_time_s == 12.7


def test_log_beginning_with_source_code(tmp_path: Path) -> None:
    log = tmp_path / "run.txt"
    log.write_text(
        'import os\nprint(f"final_int8_zlib_roundtrip_exact val_loss:{a:.8f} val_bpb:{b:.8f}")\n'
        "print('step:1/2 val_loss:9.0 val_bpb:9.0')\n" + "=" * 100 + "\n"
        "val_loader:shards pattern=x tokens:1000\nseed:7\n"
        "step:2/20 val_loss:3.0000 val_bpb:2.0000 train_time:100ms step_avg:50.00ms\n"
        "Serialized model int8+zlib: 1234 bytes (payload:1 raw_torch:1 payload_ratio:1x)\n"
        "final_int6_roundtrip val_loss:2.5 val_bpb:1.5 eval_time:2000ms\n"
        "final_sliding_window_exact val_loss:2.40000000 val_bpb:1.40000000\n"
    )
    run = parse_log(log)
    assert run.skipped_source_lines == 4
    assert (run.seed, run.val_bpb, run.val_loss, run.score_label) == (7, 1.4, 2.4, "final_sliding_window_exact")
    assert (run.artifact_bytes, run.val_tokens, run.eval_time_s, run.train_time_s) == (1234, 1000, 2.0, 0.1)


def test_log_without_a_score_has_none(tmp_path: Path) -> None:
    log = tmp_path / "train_seed3.log"
    log.write_text("seed:3\nstep:1000/20000 val_loss:2.3000 val_bpb:1.3600 train_time:44000ms step_avg:44.00ms\n")
    run = parse_log(log)
    assert not run.has_score and run.val_bpb is None
    assert run.seed == 3 and run.train_time_s == 44.0


def test_legal_ttt_exact_is_the_last_score(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "final_int6_sliding_window_exact val_loss:1.90000000 val_bpb:1.12000000\n"
        "legal_ttt_exact val_loss:1.89000000 val_bpb:1.11900000\n"
    )
    assert parse_log(log).score_label == "legal_ttt_exact"
