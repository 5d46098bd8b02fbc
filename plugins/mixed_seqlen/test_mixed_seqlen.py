"""mixed_seqlen: per-rank plans and loss weights, the token-weighted gradient, rank spans, refusals, 2-rank run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from golfc.testing import TINY_RUN_ENV, cpu_context, load_program

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "TRAIN_BATCH_TOKENS": "256", "VOCAB_SIZE": "64", "DEVICE": "cpu"}
MIXED = {**TINY, "SEQS_PER_GPU": "8,16", "LOCAL_SEQS_PER_GPU": "6,1"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("mixed_seqlen",), env=MIXED)


def test_the_records_plan_weights_every_token_the_same(ns):
    plan = [(2048, 36)] * 5 + [(6144, 10)] * 3  # PR #1212 on 8 ranks
    weights = ns["mixed_seqlen_weights"](plan)
    assert sum(weights) == pytest.approx(8)
    total = 5 * 2048 * 36 + 3 * 6144 * 10
    assert weights[0] == pytest.approx(8 * 2048 * 36 / total) and weights[7] == pytest.approx(8 * 6144 * 10 / total)
    assert ns["mixed_seqlen_weights"]([(16, 4), (32, 2)]) == [1.0, 1.0]  # equal shares: no weighting


def test_the_weighted_average_of_rank_gradients_is_the_gradient_of_the_mean_over_every_token(ns):
    """What the core computes (each rank's mean loss x loss_weight, then the plain mean over ranks) equals the
    gradient of the mean NLL over all tokens of the step; the unweighted mean over ranks does not."""
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    for block in model.stack.blocks:
        torch.nn.init.normal_(block.attn.proj.weight, std=0.2)
    plan = ns["mixed_seqlen_plan"](h, 2, 8, h.train_batch_tokens)
    assert plan == [(8, 6), (16, 1)]
    batches = [torch.randint(0, 64, (n, L + 1)) for L, n in plan]

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    per_rank = [grads(model(b[:, :-1], b[:, 1:])) for b in batches]
    weights = ns["mixed_seqlen_weights"](plan)
    averaged = [(weights[0] * g0 + weights[1] * g1) / 2 for g0, g1 in zip(*per_rank)]
    nll = torch.cat([model(b[:, :-1], b[:, 1:], reduction="none").flatten() for b in batches])
    expected = grads(nll.mean())
    for a, e in zip(averaged, expected):
        torch.testing.assert_close(a, e, atol=1e-6, rtol=1e-5)
    unweighted = [(g0 + g1) / 2 for g0, g1 in zip(*per_rank)]
    assert not all(torch.allclose(u, e, atol=1e-6, rtol=1e-5) for u, e in zip(unweighted, expected))


def test_each_rank_takes_its_own_consecutive_span_of_one_shared_chunk(ns, tiny_dataset):
    h = ns["Hyperparameters"]()
    h.train_files = os.path.join(str(tiny_dataset.data_path), "fineweb_train_*.bin")
    h.vocab_size = tiny_dataset.vocab_size
    stream = ns["TokenStreamLoader"](h, cpu_context(ns))._take(3 * (49 + 17))
    for rank, (L, n, start) in enumerate([(8, 6, 0), (16, 1, 49)]):
        loader = ns["MixedSeqLenLoader"](h, cpu_context(ns, rank=rank, world=2))
        assert loader.loss_weight == pytest.approx([96 / 64, 32 / 64][rank])
        for step in range(3):
            x, y = loader.next_batch(h.train_batch_tokens, h.train_seq_len, 4)
            assert x.shape == y.shape == (n, L) and x.dtype == torch.int64
            base = step * 66 + start
            assert torch.equal(x.flatten(), stream[base : base + n * L].long())
            assert torch.equal(y.flatten(), stream[base + 1 : base + n * L + 1].long())


def test_empty_lists_are_the_baseline_split_with_no_weight(tiny_dataset):
    plain = load_program(("mixed_seqlen",), env=TINY)
    h = plain["Hyperparameters"]()
    h.train_files = os.path.join(str(tiny_dataset.data_path), "fineweb_train_*.bin")
    h.vocab_size = tiny_dataset.vocab_size
    for rank in (0, 1):
        ours = plain["MixedSeqLenLoader"](h, cpu_context(plain, rank=rank, world=2))
        theirs = plain["TokenStreamLoader"](h, cpu_context(plain, rank=rank, world=2))
        assert ours.loss_weight == 1.0
        for _ in range(2):
            a, b = ours.next_batch(256, 16, 4), theirs.next_batch(256, 16, 4)
            assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize(("env", "message"), [
    ({"SEQS_PER_GPU": "8", "LOCAL_SEQS_PER_GPU": "6,1"}, "SEQS_PER_GPU=8: expected one entry per rank (2)"),
    ({"SEQS_PER_GPU": "8,32", "LOCAL_SEQS_PER_GPU": "6,1"},
     "SEQS_PER_GPU=8,32: longer than TRAIN_SEQ_LEN=16; expected TRAIN_SEQ_LEN >= the longest"),
])
def test_plans_that_cannot_work_are_refused_naming_the_knob(env, message):
    bad = load_program(("mixed_seqlen",), env={**TINY, **env})
    with pytest.raises(bad["RunInputError"], match=re.escape(message)):
        bad["mixed_seqlen_plan"](bad["Hyperparameters"](), 2, 4, 256)


@pytest.mark.slow
def test_a_two_rank_gloo_run_trains_each_rank_at_its_own_length(tmp_path, tiny_dataset):
    from golfc.build import build_submission

    build = build_submission(("mixed_seqlen",), {}, tmp_path)
    env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, "ITERATIONS": "3", "OMP_NUM_THREADS": "1",
           "SEQS_PER_GPU": "32,64", "LOCAL_SEQS_PER_GPU": "6,1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "train_gpt.py"], cwd=build.out_dir, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mixed_seqlen: rank0=32x6=768tok rank1=64x1=256tok loss_weight(rank0)=1.5000" in proc.stdout
    assert re.search(r"^final_int8_zlib_roundtrip_exact val_loss:\S+ val_bpb:\S+$", proc.stdout, re.M)
