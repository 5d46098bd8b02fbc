"""plugins/parallel_muon: on one rank, three training steps bit-identical to plain Muon; on two gloo ranks (two
CPU processes), gradients reduce-scattered and updates all-gathered give bit-identical weights to the flat
all-reduce and Muon's default exchange, for a model and for shape groups with fewer members than ranks;
clipping refused with several ranks; e2e."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from golfc.testing import load_program, run_emitted

ENV = {"VOCAB_SIZE": "64", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256", "DEVICE": "cpu", "WARMUP_STEPS": "0"}
SHAPES = [(8, 16), (16, 8), (8, 8), (8, 16), (12, 8), (16, 8), (8, 12)]


class Batches:
    """Seeded (x, y) batches (2, 16); a rank's own stream."""

    def __init__(self, vocab, seed):
        self.generator = torch.Generator().manual_seed(seed)
        self.vocab = vocab

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = torch.randint(0, self.vocab, (2, 17), generator=self.generator)
        return ids[:, :-1], ids[:, 1:]


def train_three_steps(ns, rank=0, world=1):
    """The core's train_step three times (model, optimizers, schedule, gradient averaging): the state dict."""
    h = ns["Hyperparameters"]()
    ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, world > 1, 8 // world)
    torch.manual_seed(h.seed)
    run = ns["build_model"](h, ctx)
    ns["prepare_training"](run)
    loader = Batches(h.vocab_size, seed=100 + rank)
    for step in range(3):
        ns["train_step"](run, step, 0.0, loader)
    return {k: v.detach().clone() for k, v in run.base_model.state_dict().items()}


def muon_two_steps(ns, rank=0, world=1):
    """A Muon of SHAPES (groups of 4, 1 and 2 members) stepped twice on rank-dependent gradients, averaged by
    the program's grad_average slot; matrix 2 has no gradient."""
    ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, world > 1, 8 // world)
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator)) for s in SHAPES]
    opt = ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx, h=ns["Hyperparameters"]())
    generator = torch.Generator().manual_seed(10 + rank)
    for _ in range(2):
        for i, p in enumerate(params):
            p.grad = None if i == 2 else torch.randn(p.shape, generator=generator)
        if world > 1:
            ns["average_gradients"](params, ctx)
        opt.step()
    return [p.detach().clone() for p in params]


def programs():
    return load_program((), env=ENV), load_program(("parallel_muon",), env=ENV)


def test_one_rank_trains_bit_identically_to_plain_muon():
    plain_ns, parallel_ns = programs()
    plain, parallel = train_three_steps(plain_ns), train_three_steps(parallel_ns)
    assert plain.keys() == parallel.keys()
    assert all(torch.equal(plain[k], parallel[k]) for k in plain)
    assert all(torch.equal(a, b) for a, b in zip(muon_two_steps(plain_ns), muon_two_steps(parallel_ns)))


def test_the_slots_it_fills():
    ns = load_program(("parallel_muon",), env=ENV)
    assert ns["average_gradients"] is ns["parallel_muon_average"] and ns["PARALLEL_MUON"] in ns["MUON_TRANSFORMS"]
    # rows of a (per * world, numel) buffer: rank r's members j = r, r + world, ... are one contiguous block
    layout = ns["parallel_muon_layout"]([torch.zeros(s) for s in SHAPES], 2)
    assert layout == [([0, 1, 3, 5], 2), ([2], 1), ([4, 6], 1)]
    assert [ns["parallel_muon_row"](j, 2, 2) for j in range(4)] == [0, 2, 1, 3]


def test_clipping_is_refused_with_several_ranks():
    ns = load_program(("parallel_muon",), env={**ENV, "GRAD_CLIP_NORM": "0.3"})
    ctx = ns["RunContext"](0, 2, 0, torch.device("cpu"), True, True, 4)
    params = [torch.nn.Parameter(torch.zeros(8, 8))]
    with pytest.raises(ns["RunInputError"], match=r"parallel_muon: GRAD_CLIP_NORM=0\.3"):
        ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx, h=ns["Hyperparameters"]())
    ctx.distributed, ctx.world_size = False, 1  # one rank: nothing is reduce-scattered, clipping is fine
    ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx, h=ns["Hyperparameters"]())


@pytest.mark.slow
def test_two_gloo_ranks_give_the_weights_of_plain_muon(tmp_path):
    store = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, __file__, str(rank), str(store), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    out = {rank: torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)}
    for rank in (0, 1):
        plain, parallel = out[rank]["plain"], out[rank]["parallel"]
        assert all(torch.equal(plain[k], parallel[k]) for k in plain)  # the model after three steps
        assert all(torch.equal(a, b) for a, b in zip(out[rank]["muon_plain"], out[rank]["muon_parallel"]))
    assert all(torch.equal(out[0]["parallel"][k], out[1]["parallel"][k]) for k in out[0]["parallel"])
    one_rank = train_three_steps(load_program((), env=ENV))
    assert any(not torch.equal(one_rank[k], out[0]["plain"][k]) for k in one_rank)  # the ranks' data mattered


@pytest.mark.slow
def test_an_emitted_program_with_parallel_muon_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("parallel_muon",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "plugins/parallel_muon:" in (tmp_path / "train_gpt.src.py").read_text()
    assert run.final_bpb is not None and run.final_bpb > 0


if __name__ == "__main__":  # one gloo rank of test_two_gloo_ranks_give_the_weights_of_plain_muon
    rank, store, out_dir = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    torch.distributed.init_process_group("gloo", store=torch.distributed.FileStore(store, 2), rank=rank, world_size=2)
    plain_ns, parallel_ns = programs()
    result = {"plain": train_three_steps(plain_ns, rank, 2), "parallel": train_three_steps(parallel_ns, rank, 2),
              "muon_plain": muon_two_steps(plain_ns, rank, 2), "muon_parallel": muon_two_steps(parallel_ns, rank, 2)}
    torch.save(result, out_dir / f"rank{rank}.pt")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
