"""plugins/plain_eval: every position scored once, NLL equal to the mean-loss path, bytes from the tables."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program

TINY = {
    "VOCAB_SIZE": "64",
    "NUM_LAYERS": "2",
    "MODEL_DIM": "32",
    "NUM_HEADS": "2",
    "NUM_KV_HEADS": "1",
    "TRAIN_SEQ_LEN": "16",
    "VAL_BATCH_SIZE": "512",  # 512 // (world_size * grad_accum_steps * 16) = 4 windows per forward
    "DEVICE": "cpu",
}


@pytest.fixture(scope="module")
def setup():
    ns = load_program(overrides=TINY)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    val_tokens = torch.randint(0, 64, (11 * 16 + 1,), dtype=torch.int32)  # 11 windows: a short last batch
    luts = (torch.randint(0, 4, (64,), dtype=torch.int16), torch.rand(64) < 0.5, torch.rand(64) < 0.2)
    return ns, h, model, val_tokens, luts


def score(ns, h, model, val_tokens, luts, rank=0, world=1):
    ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, False, 8 // world)
    ctx.luts = luts
    return ns["score_plain_windows"](model, val_tokens, h, ctx)


def test_every_position_once_and_equal_to_the_mean_loss_path(setup):
    ns, h, model, val_tokens, luts = setup
    scores = score(ns, h, model, val_tokens, luts)
    n = val_tokens.numel() - 1
    assert scores.positions.tolist() == list(range(1, n + 1))
    assert scores.nll.dtype == torch.float32 and scores.nll.shape == (n,)
    x, y = val_tokens[:-1].long().view(-1, 16), val_tokens[1:].long().view(-1, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mean = model(x, y)
    assert torch.allclose(scores.nll.double().mean(), mean.double(), rtol=1e-4)
    prev, tgt = val_tokens[:-1].long(), val_tokens[1:].long()
    expected = luts[0][tgt] + (luts[1][tgt] & ~luts[2][prev]).short()
    assert torch.equal(scores.nbytes, expected)
    assert model.training  # restored


def test_ranks_split_by_sequence(setup):
    ns, h, model, val_tokens, luts = setup
    whole = score(ns, h, model, val_tokens, luts)
    parts = [score(ns, h, model, val_tokens, luts, rank, 4) for rank in range(4)]
    positions = torch.cat([p.positions for p in parts])
    assert positions.tolist() == whole.positions.tolist()  # disjoint, in order, complete
    assert all(p.positions.numel() % 16 == 0 for p in parts)
    torch.testing.assert_close(torch.cat([p.nll for p in parts]), whole.nll, atol=2e-2, rtol=0)  # bf16 batches differ
    assert torch.equal(torch.cat([p.nbytes for p in parts]), whole.nbytes)


class CountingModel(torch.nn.Module):
    """Wraps a model and records the batch size of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model, self.batches = model, []

    def forward(self, x, y, reduction="mean"):
        self.batches.append(x.size(0))
        return self.model(x, y, reduction=reduction)


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_batch_counts_tokens_over_ranks_and_micro_batches(setup, world):
    """VAL_BATCH_SIZE // (world_size * grad_accum_steps): 4 windows per pass on every world size (8 // world)."""
    ns, h, model, val_tokens, luts = setup
    counting = CountingModel(model)
    batches = []
    for rank in range(world):
        counting.batches = []
        score(ns, h, counting, val_tokens, luts, rank, world)
        assert all(b <= 4 for b in counting.batches) and counting.batches[:-1] == [4] * (len(counting.batches) - 1)
        batches += counting.batches
    assert sum(batches) == 11


def test_more_ranks_than_windows_and_too_small_batches(setup):
    ns, h, model, _, luts = setup
    short = torch.randint(0, 64, (16 + 1,), dtype=torch.int32)
    empty = score(ns, h, model, short, luts, rank=0, world=2)
    assert empty.positions.numel() == empty.nll.numel() == empty.nbytes.numel() == 0
    small = ns["Hyperparameters"]()
    small.val_batch_size = 15  # less than one 16-token window
    with pytest.raises(ValueError, match="VAL_BATCH_SIZE=15"):
        score(ns, small, model, short, luts)
