"""plugins/coprime_loader: a coprime walk visits every block once; ranks share one plan without overlap; a pass
uses every block of every shard once; the mix/alpha ramp; bad ids; e2e."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golfc.data.shards import write_shard
from golfc.testing import load_program, run_emitted

SEQ = 4


@pytest.fixture(scope="module")
def ns():
    return load_program(("coprime_loader",), env={"DEVICE": "cpu", "TRAIN_SEQ_LEN": str(SEQ)})


def test_it_fills_the_data_loader_slot(ns):
    assert ns["TrainLoader"] is ns["CoprimeLoader"]


@pytest.mark.parametrize("num_tokens", [5, 9, 50, 101, 1000])
def test_a_coprime_walk_visits_every_block_exactly_once(ns, num_tokens):
    for seed in range(5):
        walk = ns["CoprimeWalk"](num_tokens, SEQ, np.random.default_rng(seed))
        assert walk.phase < SEQ and walk.count == (num_tokens - 1 - walk.phase) // SEQ
        assert walk.count <= 1 or math.gcd(walk.stride, walk.count) == 1
        blocks = [walk.next_block() for _ in range(walk.count)]
        assert sorted(blocks) == list(range(walk.count)) and walk.remaining == 0
        assert walk.phase + walk.count * SEQ + 1 <= num_tokens  # the last block's extra target token exists


def make_shards(tmp_path, sizes):
    offset = 0
    for i, n in enumerate(sizes):
        write_shard(tmp_path / f"fineweb_train_{i:06d}.bin", (np.arange(n) + offset) % 60000)
        offset += n
    return str(tmp_path / "fineweb_train_*.bin")


def loaders(ns, pattern, world, **values):
    h = ns["Hyperparameters"]()
    h.train_files, h.vocab_size = pattern, 65536
    for k, v in values.items():
        setattr(h, k, v)
    out = []
    for rank in range(world):
        ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, False, 8 // world)
        out.append(ns["CoprimeLoader"](h, ctx))
    return out


def test_ranks_split_one_plan_and_a_pass_uses_every_block_once(ns, tmp_path):
    pattern = make_shards(tmp_path, [41, 83, 130, 3])  # the 3-token shard has no block
    world, accum, per_rank = 2, 4, 3
    ranks = loaders(ns, pattern, world, loader_mix_start=2, loader_mix_end=2)
    total = sum(w.count for w in ranks[0].walks)
    seen = []
    for _ in range(total // (world * per_rank)):
        for loader in ranks:
            x, y = loader.next_batch(world * accum * per_rank * SEQ, SEQ, accum)
            assert x.shape == y.shape == (per_rank, SEQ) and x.dtype == torch.int64
            assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
            assert torch.all(y[:, -1] == x[:, -1] + 1)  # contiguous tokens (the shards count up)
            seen.extend(x[:, 0].tolist())
    assert len(seen) == len(set(seen))  # no block twice, on either rank
    assert ranks[0].passes == ranks[1].passes == 1  # still the first pass: every block at most once
    assert [w.taken for w in ranks[0].walks] == [w.taken for w in ranks[1].walks]  # the same plan on both ranks
    assert len(seen) == total - total % (world * per_rank)


def test_mix_and_alpha_ramp_linearly(ns, tmp_path):
    (loader,) = loaders(ns, make_shards(tmp_path, [100]), 1, loader_ramp_batches=100)
    assert loader.mix_and_alpha() == (8, pytest.approx(0.9))
    loader.batches = 50
    assert loader.mix_and_alpha() == (20, pytest.approx(0.7))
    loader.batches = 1000
    assert loader.mix_and_alpha() == (32, pytest.approx(0.5))


def test_a_new_pass_starts_when_every_block_was_used(ns, tmp_path):
    (loader,) = loaders(ns, make_shards(tmp_path, [21]), 1)
    blocks = loader.walks[0].count
    for _ in range(blocks + 2):
        loader.next_batch(8 * SEQ, SEQ, 8)
    assert loader.passes == 2


def test_an_id_outside_the_vocabulary_is_a_one_line_error(ns, tmp_path):
    (loader,) = loaders(ns, make_shards(tmp_path, [50]), 1, vocab_size=10)
    with pytest.raises(ValueError, match="expected ids below VOCAB_SIZE=10"):
        loader.next_batch(8 * SEQ, SEQ, 8)


@pytest.mark.slow
def test_an_emitted_program_with_coprime_loader_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("coprime_loader",), tiny_dataset, tmp_path, env={"LOADER_MIX_START": "2"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "loader_mix_start=2" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
