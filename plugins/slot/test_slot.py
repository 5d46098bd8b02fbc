"""slot: identity without steps, per-window deltas, causality (and the shared-delta leak failing it), e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import cpu_context, load_program, mixing_model, prefix_violations, run_emitted

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "EVAL_STRIDE": "4", "EVAL_BATCH_SEQS": "5", "SLOT_STEPS": "4", "SLOT_LR": "0.05",
        "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("sliding_window", "slot"), env=TINY)


@pytest.fixture(scope="module")
def model(ns):
    return mixing_model(ns)


def stream(n=90, seed=5):
    return torch.randint(0, 64, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)


def test_forward_is_logits_of_hidden(ns, model):
    ids = torch.randint(0, 64, (2, 16))
    logits = model.logits(model.hidden(ids))
    nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view_as(ids)
    torch.testing.assert_close(model(ids, ids, reduction="none"), nll)


def test_without_steps_slot_scores_like_the_sliding_windows(ns, model):
    h = ns["Hyperparameters"]()
    h.slot_steps = 0
    slot = ns["score_with_context_slot"](model, stream(), h, cpu_context(ns), True)
    sliding = ns["score_plain_windows"](model, stream(), h, cpu_context(ns))
    assert torch.equal(slot.positions, sliding.positions)
    torch.testing.assert_close(slot.nll, sliding.nll)


def test_each_window_fits_its_own_delta_on_its_context_only(ns, model):
    h = ns["Hyperparameters"]()
    hidden = model.hidden(torch.randint(0, 64, (3, 16))).detach()
    y = torch.randint(0, 64, (3, 16))
    context = torch.arange(16)[None, :] < torch.tensor([0, 8, 12])[:, None]
    delta = ns["fit_context_deltas"](model, hidden, y, context, h)
    assert delta.shape == (3, 1, 32)
    assert torch.equal(delta[0], torch.zeros(1, 32))  # no context: nothing to fit
    other = y.clone()
    other[1, 8:] = (other[1, 8:] + 1) % 64  # window 1's scored targets: its delta must not see them
    other[2] = (other[2] + 1) % 64  # another window's tokens: not window 1's business either
    again = ns["fit_context_deltas"](model, hidden, other, context, h)
    assert torch.equal(again[1], delta[1]) and not torch.equal(again[2], delta[2])


def test_the_final_evaluation_adapts_scores_every_target_once_and_leaves_the_weights(ns, model):
    h = ns["Hyperparameters"]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    slot = ns["score_with_context_slot"](model, stream(), h, cpu_context(ns), True)
    plain = ns["score_with_context_slot"](model, stream(), h, cpu_context(ns), False)
    assert sorted(slot.positions.tolist()) == list(range(1, 90))
    assert not torch.allclose(slot.nll, plain.nll)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_score_ledger_says_each_window_learned_from_its_own_context_only(ns, model):
    """The ledger (core/data): a window's targets were scored after SLOT_STEPS optimizer steps per batch so far, from
    a delta fitted on its context targets start + 1 .. first (seen = first; -1 for the first window, no context)."""
    h = ns["Hyperparameters"]()
    ctx = cpu_context(ns)
    scores = ns["ledger_scores"](model, stream(), h, ctx, True)
    plan = ns["eval_windows"](stream(), h, ctx)
    expected = {p: (first if first > start else -1) for start, first in plan.spans
                for p in range(first + 1, start + plan.window + 1)}
    assert scores.seen.tolist() == [expected[p] for p in scores.positions.tolist()]
    assert (scores.seen < scores.positions).all()
    # batch b of EVAL_BATCH_SEQS windows is scored after (b + 1) x SLOT_STEPS steps (its own deltas' included)
    window_of = {p: i for i, (start, first) in enumerate(plan.spans) for p in range(first + 1, start + plan.window + 1)}
    assert scores.updates.tolist() == [(window_of[p] // h.eval_batch_seqs + 1) * h.slot_steps
                                       for p in scores.positions.tolist()]


@pytest.mark.parametrize("j", [3, 16, 17, 20, 21, 36, 37, 60])  # inside windows, at window and batch edges
def test_changing_tokens_at_and_after_j_leaves_every_earlier_score_bit_identical(ns, model, j):
    h = ns["Hyperparameters"]()
    assert prefix_violations(ns["score_with_context_slot"], model, stream(), h, cpu_context(ns), j) == []


def test_a_delta_shared_across_a_batch_fails_the_same_probe(ns, model):
    """The L13 leak (tests/leaky): windows of one batch share a delta fitted on all their contexts."""
    from tests.leaky.slot_shared_delta import score_with_shared_delta

    h = ns["Hyperparameters"]()
    violations = [v for j in (20, 21, 36, 37) for v in prefix_violations(
        lambda *a: score_with_shared_delta(ns, *a), model, stream(), h, cpu_context(ns), j)]
    assert violations


@pytest.mark.slow
def test_an_emitted_program_with_slot_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    env = {"EVAL_STRIDE": "32", "EVAL_BATCH_SEQS": "8", "SLOT_STEPS": "2", "VAL_LOSS_EVERY": "2"}
    run = run_emitted(("sliding_window", "slot"), tiny_dataset, tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "slot_steps=2" in run.stdout and run.final_bpb is not None and run.final_bpb > 0


def test_slot_without_sliding_windows_is_refused_at_build_naming_the_fix(tmp_path):
    """Plain windows give SLOT no context: it would never adapt and score exactly like a build without it."""
    from golfc.build import build_submission
    from golfc.errors import RecipeError

    with pytest.raises(RecipeError, match=r"slot: plain_eval's evaluation windows have no context .* sliding_window"):
        build_submission(("slot", "window"), {}, tmp_path / "refused")
    assert not (tmp_path / "refused" / "train_gpt.py").exists()
    build_submission(("sliding_window", "slot", "window"), {}, tmp_path / "built")
    assert (tmp_path / "built" / "train_gpt.py").is_file()
