"""sliding_window: the window plan, exactly-once scoring across ranks, causality, and end-to-end runs."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import cpu_context, load_program, mixing_model, run_emitted

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "32",
        "VOCAB_SIZE": "64", "EVAL_STRIDE": "8", "EVAL_BATCH_SEQS": "3", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("sliding_window",), env=TINY)


@pytest.fixture(scope="module")
def model(ns):
    return mixing_model(ns)


@pytest.mark.parametrize("num_targets", [1, 31, 32, 33, 100, 257])
@pytest.mark.parametrize(("window", "stride"), [(32, 8), (32, 32), (32, 5), (16, 1)])
def test_every_target_is_scored_exactly_once_with_at_least_window_minus_stride_context(ns, num_targets, window, stride):
    spans = ns["sliding_windows"](num_targets, window, stride)
    w = min(window, num_targets)
    scored = [t for start, first in spans for t in range(first + 1, start + w + 1)]
    assert sorted(scored) == list(range(1, num_targets + 1))
    assert spans[-1][0] + w == num_targets  # the last window ends at the stream's end
    for start, first in spans[1:]:
        assert first - start >= w - stride  # every later window's scored targets see >= w - stride tokens
        assert 0 <= start and first < start + w


def test_ranks_score_disjoint_windows_that_cover_the_stream(ns, model):
    h = ns["Hyperparameters"]()
    val = torch.randint(0, 64, (200,), dtype=torch.int32)
    one = ns["score_plain_windows"](model, val, h, cpu_context(ns))
    assert one.positions.tolist() == list(range(1, 200))
    parts = [ns["score_plain_windows"](model, val, h, cpu_context(ns, r, 3)) for r in range(3)]
    joined = torch.cat([p.positions for p in parts])
    assert sorted(joined.tolist()) == list(range(1, 200))
    by_position = dict(zip(one.positions.tolist(), one.nll.tolist()))
    for p in parts:  # the same window gives the same score whichever rank computes it
        for pos, value in zip(p.positions.tolist(), p.nll.tolist()):
            assert value == pytest.approx(by_position[pos], rel=1e-5, abs=1e-6)


def test_a_stride_of_one_window_plans_and_scores_like_the_plain_windows(ns, model):
    h = ns["Hyperparameters"]()
    h.eval_stride = h.train_seq_len
    plain = load_program((), env=TINY)
    val = torch.randint(0, 64, (32 * 4 + 1,), dtype=torch.int32)
    sliding = ns["score_plain_windows"](model, val, h, cpu_context(ns))
    reference = plain["score_plain_windows"](model, val, plain["Hyperparameters"](), cpu_context(plain))
    plans = ns["sliding_eval_windows"](val, h, cpu_context(ns)), plain["plain_windows"](val, h, cpu_context(plain))
    assert plans[0].spans == plans[1].spans
    assert sliding.positions.tolist() == reference.positions.tolist()
    torch.testing.assert_close(sliding.nll, reference.nll, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("j", [5, 32, 33, 40, 41, 47, 48, 90])  # inside windows, at window and batch edges
def test_changing_tokens_at_and_after_j_leaves_every_earlier_score_bit_identical(ns, model, j):
    h = ns["Hyperparameters"]()
    torch.manual_seed(1)
    val = torch.randint(0, 64, (120,), dtype=torch.int32)
    other = val.clone()
    other[j:] = torch.randint(0, 64, (120 - j,), dtype=torch.int32)
    a = ns["score_plain_windows"](model, val, h, cpu_context(ns))
    b = ns["score_plain_windows"](model, other, h, cpu_context(ns))
    before = a.positions < j
    assert torch.equal(a.positions, b.positions)
    assert torch.equal(a.nll[before], b.nll[before])
    assert not torch.equal(a.nll[~before], b.nll[~before])  # the probe can see a change where there is one


def test_windows_longer_than_training_grow_the_rope_tables(ns, model):
    h = ns["Hyperparameters"]()
    h.eval_seq_len, h.eval_stride = 64, 16  # TRAIN_SEQ_LEN is 32
    val = torch.randint(0, 64, (150,), dtype=torch.int32)
    scores = ns["score_plain_windows"](model, val, h, cpu_context(ns))
    assert scores.positions.tolist() == list(range(1, 150)) and torch.isfinite(scores.nll).all()
    assert all(m.cos.size(1) >= 64 for m in model.modules() if isinstance(m, ns["Rotary"]))


def test_a_stride_longer_than_the_window_is_refused(ns, model):
    h = ns["Hyperparameters"]()
    h.eval_stride = 33
    with pytest.raises(ns["RunInputError"], match="EVAL_STRIDE=33 is longer than the window EVAL_SEQ_LEN=32"):
        ns["score_plain_windows"](model, torch.zeros(100, dtype=torch.int32), h, cpu_context(ns))


@pytest.mark.slow
def test_an_emitted_program_scores_every_target_with_sliding_windows(tmp_path, tiny_dataset):
    env = {"ITERATIONS": "12", "EVAL_STRIDE": "16", "EVAL_BATCH_SEQS": "16"}
    sliding = run_emitted(("sliding_window",), tiny_dataset, tmp_path / "sliding", env=env)
    plain = run_emitted((), tiny_dataset, tmp_path / "plain", env=env)
    assert sliding.returncode == 0, sliding.stderr[-2000:]
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "eval_stride=16" in sliding.stdout
    # the same training (the eval adapter does not touch it); the core checked that every target was scored
    # once; other windows give other scores (a 12-step model barely uses its context, so not a better one)
    assert sliding.stdout.split("step:12/12 train_loss")[1][:8] == plain.stdout.split("step:12/12 train_loss")[1][:8]
    assert sliding.final_bpb != plain.final_bpb
