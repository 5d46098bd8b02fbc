"""What communication costs one rank of a multi-GPU run, and what overlapping it saves.

Usage (on the device): torchrun --standalone --nproc_per_node N bench/dist_step.py PROGRAM.src.py
                           [--accum K] [--variants manual+gloo,manual+nccl,...] [--steps S] [--json OUT]

Loads a built program without running main() and builds its model and optimizers as main() does (compiled on
CUDA, bf16 autocast, the real per-GPU micro-batch of 64 x 1024 at the defaults, fixed random tokens per rank).
Each rank does K micro-batches per step (default 1: what each GPU does on 8 GPUs, whatever N is here), so on
two or four GPUs the per-rank work is that of the eight-GPU challenge setting and only the ring is smaller.

A variant is GRADS+STOP:
- GRADS, how gradients are averaged over ranks:
  - ``manual``: the program's own ``all_reduce_grads``, one flat all-reduce per dtype after the whole backward;
  - ``ddp``: DDP around the compiled model (the reference's wiring): inside DDP's forward, dynamo's
    DDPOptimizer splits the compiled graph at DDP's 25 MB bucket boundaries, so that each bucket's
    all-reduce overlaps the rest of the backward;
  - ``none``: no gradient communication (a floor: each rank keeps its own gradients; Muon still shares
    its updates);
- STOP, how ranks agree on the wall-clock stop after every step:
  - ``none``: not at all (a run without a cap);
  - ``nccl``: an NCCL all-reduce of a flag read back with ``.item()`` (the reference's way: it drains the
    GPU's queue every step);
  - ``gloo``: the program's own ``max_over_ranks`` over its ``host_group`` (agreed on the hosts, no GPU sync).

Timing: after warm-up steps (compilation), ``--steps`` steps run back to back as in training (no sync
between steps but what the variant itself does) and the wall time is divided by the step count; the
figure reported is the slowest rank's, since every rank waits for the slowest at each all-reduce.
Runs on CPU too (gloo ranks, no compile), which is how the test suite checks it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paced_run import exec_program

GRADS = ("ddp", "manual", "none")
STOPS = ("none", "nccl", "gloo")


def parse_variants(text: str) -> list[tuple[str, str]]:
    """'ddp+gloo,manual+nccl' -> [('ddp', 'gloo'), ('manual', 'nccl')]; ValueError names a bad entry."""
    variants = []
    for item in text.split(","):
        grads, _, stop = item.partition("+")
        if grads not in GRADS or stop not in STOPS:
            raise ValueError(f"--variants {item!r}: expected GRADS+STOP with GRADS in {GRADS} and STOP in {STOPS}")
        variants.append((grads, stop))
    return variants


def build_step(g: dict, ctx, grads: str, stop: str, accum: int):
    """The program's model and optimizers, and a step closure for one variant (ctx: the program's RunContext)."""
    h = g["Hyperparameters"]()
    ctx.grad_accum_steps = accum
    torch.manual_seed(h.seed)
    base = g["GPT"](h).to(ctx.device)
    g["cast_params_for_training"](base, ctx.device)
    compiled = g["compile_enabled"](h, ctx.device)
    model = torch.compile(base, dynamic=False, fullgraph=True) if compiled else base
    train_model = model
    if grads == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
    optimizers = g["build_optimizers"](base, h, ctx)
    params = [p for p in base.parameters() if p.requires_grad]
    rows = h.train_batch_tokens // (8 * h.train_seq_len)  # the per-GPU micro-batch of the challenge (64)
    gen = torch.Generator().manual_seed(1000 + ctx.rank)
    x = torch.randint(0, h.vocab_size, (rows, h.train_seq_len), generator=gen).to(ctx.device)
    y = torch.randint(0, h.vocab_size, (rows, h.train_seq_len), generator=gen).to(ctx.device)
    group = g["host_group"](ctx) if stop == "gloo" else None

    def step(i: int) -> None:
        g["apply_schedule"](optimizers, i, 0.0, h)
        for micro in range(accum):
            if grads == "ddp":
                train_model.require_backward_grad_sync = micro == accum - 1
            with g["bf16_autocast"](ctx.device):
                loss = train_model(x, y)
            (loss / accum).backward()
        if grads == "manual":
            g["all_reduce_grads"](params, ctx)
        for opt in optimizers:
            opt.step()
        base.zero_grad(set_to_none=True)
        if stop == "nccl":
            flag = torch.tensor(0, device=ctx.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            flag.item()
        elif stop == "gloo":
            g["max_over_ranks"](float(i), group)

    return step


def time_variant(g: dict, ctx, step, warmup: int, steps: int) -> list[float]:
    """ms/step of every rank over `steps` back-to-back steps after `warmup` steps (rank order)."""
    for i in range(warmup):
        step(i)
    g["sync_device"](ctx.device)
    dist.barrier()
    t = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    g["sync_device"](ctx.device)
    mine = torch.tensor([1000.0 * (time.perf_counter() - t) / steps], dtype=torch.float64)
    everyone = [torch.zeros_like(mine, device=ctx.device) for _ in range(ctx.world_size)]
    dist.all_gather(everyone, mine.to(ctx.device))  # NCCL gathers device tensors, gloo host ones
    return [float(v.item()) for v in everyone]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program", type=Path)
    parser.add_argument("--variants", default="manual+gloo,manual+nccl,ddp+gloo,manual+none,none+none")
    parser.add_argument("--accum", type=int, default=1, help="micro-batches per step and rank (1: eight-GPU shape)")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        variants = parse_variants(args.variants)
    except ValueError as exc:
        parser.error(str(exc))
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        parser.error("run under torchrun with --nproc_per_node of 2 or more")
    g = exec_program(args.program, "golfc_dist_step")
    g["LOG_STATE"]["enabled"] = False  # the program's own set-up lines (once per variant and rank)
    ctx = g["init_distributed"](g["Hyperparameters"]())
    device_name = torch.cuda.get_device_name() if ctx.device.type == "cuda" else "cpu"
    results = {"device": device_name, "world_size": ctx.world_size, "accum": args.accum, "runs": []}
    for grads, stop in variants:
        torch._dynamo.reset()
        t_build = time.perf_counter()
        step = build_step(g, ctx, grads, stop, args.accum)
        per_rank = time_variant(g, ctx, step, args.warmup, args.steps)
        run = {"variant": f"{grads}+{stop}", "ms_per_step": max(per_rank), "per_rank_ms": per_rank,
               "seconds_with_compile": time.perf_counter() - t_build}
        results["runs"].append(run)
        if ctx.is_master:
            ranks = " ".join(f"{v:.2f}" for v in per_rank)
            print(f"{run['variant']:<14} {max(per_rank):8.2f} ms/step (slowest rank; ranks {ranks})", flush=True)
        del step
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    if ctx.is_master:
        print(json.dumps({k: v for k, v in results.items() if k != "runs"}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    dist.barrier()
    dist.destroy_process_group()
    if ctx.device.type == "cpu":  # gloo's C++ teardown at exit aborts now and then (the program does the same)
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
