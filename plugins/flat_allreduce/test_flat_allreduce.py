"""plugins/flat_allreduce: two gloo ranks on the CPU end with every gradient equal to the mean over ranks."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from golfc.testing import load_program


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, out: str) -> None:
    from golfc_plugins.flat_allreduce.runtime import all_reduce_grads

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2)),
              torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)), torch.nn.Parameter(torch.zeros(1))]
    for i, p in enumerate(params[:3]):  # the last one has no gradient and must keep none
        p.grad = torch.full_like(p, float(rank + 1) * (i + 1))
    ctx = type("Ctx", (), {"world_size": 2})()
    all_reduce_grads(params, ctx)
    torch.save([None if p.grad is None else p.grad for p in params], f"{out}.{rank}")
    dist.barrier()
    dist.destroy_process_group()


def test_two_ranks_end_with_the_mean_gradient(tmp_path):
    out = str(tmp_path / "grads")
    mp.spawn(_rank, args=(_free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        grads = torch.load(f"{out}.{rank}")
        for i, g in enumerate(grads[:3]):
            assert torch.equal(g, torch.full_like(g, 1.5 * (i + 1)))  # mean of (1, 2) * (i + 1), fp32 and fp64
        assert grads[3] is None


def test_it_is_the_default_gradient_averaging():
    ns = load_program(env={"DEVICE": "cpu"})
    assert ns["average_gradients"] is ns["all_reduce_grads"]
