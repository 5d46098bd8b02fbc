# ==================================================================================================
# core/prelude: imports, run context, logging, distributed setup
# ==================================================================================================
# This program was composed by golfc from the core sections and one section per plugin. All sections
# share one global namespace; the wiring block binds each slot global (MLP, build_optimizers, ...)
# to the plugin that fills it. Every hyperparameter is an environment variable (class Hyperparameters).
# ruff: noqa: F401  (these imports serve every later section)
import copy
import glob
import io
import math
import os
import random
import subprocess
import sys
import time
import uuid

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------------------------------
# Shared run-time types
# --------------------------------------------------------------------------------------------------
class RunContext:
    """Where this process runs; built once in main() and handed to every plugin that needs it."""

    def __init__(self, rank, world_size, local_rank, device, is_master, distributed, grad_accum_steps, luts=None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device  # torch.device
        self.is_master, self.distributed = is_master, distributed
        self.grad_accum_steps = grad_accum_steps
        self.luts = luts  # (base_bytes, has_leading_space, is_boundary) on device, see core/data


class RunInputError(ValueError):
    """Bad input to the run (data, tokenizer, settings): reported as one line, exit code 2, no traceback."""


def check_environment(ints=(), floats=(), flags=(), choices=None, int_lists=()):
    """Exit with one line (code 2) when a hyperparameter's variable does not parse or is not one of its choices
    ({NAME: (value, ...)}); run before class Hyperparameters reads them (VOCAB_SIZE=1O24 names the variable)."""
    for name, allowed in (choices or {}).items():
        text = os.environ.get(name)
        if text is not None and text not in allowed:
            print(f"error: {name}={text!r}: expected one of {', '.join(allowed)}", file=sys.stderr)
            sys.exit(2)
    expected = {**dict.fromkeys(ints, "an integer"), **dict.fromkeys(floats, "a number"),
                **dict.fromkeys(flags, "an integer (0 or 1)"),
                **dict.fromkeys(int_lists, "comma-separated integers (2,4,6; empty for none)")}
    for name, what in expected.items():
        text = os.environ.get(name)
        if text is None:
            continue
        try:
            for piece in (text.split(",") if name in int_lists else [text]):
                if piece.strip() or name not in int_lists:  # an empty piece of a list is allowed ("" = none)
                    float(piece) if name in floats else int(piece)
        except ValueError:
            print(f"error: {name}={text!r}: expected {what}", file=sys.stderr)
            sys.exit(2)


class Scores:
    """Per-position validation scores of one rank (the eval adapter's result) with their score ledger."""

    def __init__(self, positions, nll, nbytes, updates, seen):
        self.positions = positions  # (N,) int64: index of the target token in val_tokens
        self.nll = nll  # (N,) fp32: negative log-likelihood in nats
        self.nbytes = nbytes  # (N,) int: UTF-8 bytes of the target under the BPB tables
        self.updates = updates  # (N,) int64: optimizer steps of this evaluation before the score (core/data ledger)
        self.seen = seen  # (N,) int64: last position an update behind the score learned from; -1: none


class RunEvents:
    """Base of a run_events plugin: one object per plugin, made with the model (before the optimizers); every
    method is a no-op here, so a plugin defines only what it needs. The core calls, in this order (several
    plugins: in slot order): train_start once; per timed step, first phase(model, name, True) for each phase
    whose moment has come, then the schedule, the step, weight averaging and step(...); before_export once.

    phases {name: fraction}: phase `name` is switched on before the first step at which the training clock has
    reached `fraction` of MAX_WALLCLOCK_SECONDS (of ITERATIONS when uncapped); under a cap every rank reads
    the same agreed clock, so every rank switches at the same step. The model's `phases` (tuple, read by every
    forward as fctx.phases) then includes it. The compile warmup runs every phase's graph: it switches them on
    one by one, runs WARMUP_STEPS with each, switches them off again (on=False) and restores the weights,
    optimizer state and data, so nothing compiles inside the timed loop. EVAL_ONLY switches every phase on
    before it scores a saved artifact (the phases a training run ends with).
    """

    phases = {}  # declared by the class (skip mixers read it to size their weights); never changed at run time

    def __init__(self, model, h, ctx):
        self.model, self.h, self.ctx = model, h, ctx

    def train_start(self, run):
        """After the compile warmup's restore, before the training clock starts."""

    def phase(self, model, name, on):
        """Phase `name` was switched on (on=True) or off (on=False: only the compile warmup does that)."""

    def step(self, model, step, clock_ms, lr_mul):
        """After timed optimizer step number `step` (1-based); clock_ms: the clock the schedule read for it."""

    def before_export(self, model, ctx):
        """After training and weight averaging, before the artifact is quantized and written."""


# --------------------------------------------------------------------------------------------------
# Logging: rank 0 prints and appends to logs/<RUN_ID>.txt
# --------------------------------------------------------------------------------------------------
LOG_STATE = {"path": None, "enabled": True}


def setup_logging(ctx, run_id):
    LOG_STATE["enabled"] = ctx.is_master
    if ctx.is_master:
        os.makedirs("logs", exist_ok=True)
        LOG_STATE["path"] = os.path.join("logs", f"{run_id}.txt")
        print(LOG_STATE["path"], flush=True)


def log0(msg, console=True):
    if not LOG_STATE["enabled"]:
        return
    if console:
        print(msg, flush=True)
    if LOG_STATE["path"] is not None:
        with open(LOG_STATE["path"], "a", encoding="utf-8") as f:
            print(msg, file=f)


# --------------------------------------------------------------------------------------------------
# Device, compile and distributed setup (torchrun: RANK, WORLD_SIZE, LOCAL_RANK)
# --------------------------------------------------------------------------------------------------
def pick_device(h, local_rank):
    """DEVICE=auto picks CUDA when present; each rank takes the GPU of its LOCAL_RANK (the name itself is checked
    against its choices at start-up, with every other knob)."""
    name = h.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if local_rank >= count:
        raise RunInputError(f"DEVICE={h.device}: LOCAL_RANK={local_rank} needs GPU {local_rank}, but {count} CUDA "
                            "device(s) are visible; expected DEVICE=cpu or fewer processes per node")
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def compile_enabled(h, device):
    """COMPILE=1 on, 0 off, -1 (default) on exactly when running on CUDA."""
    return h.compile == 1 or (h.compile == -1 and device.type == "cuda")


def init_distributed(h):
    """Read the torchrun environment, pick the device, join the process group (NCCL on CUDA, gloo on CPU)."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size < 1 or 8 % world_size != 0:
        raise RunInputError(f"WORLD_SIZE={world_size}: must divide 8 (grad_accum_steps = 8 // WORLD_SIZE)")
    device = pick_device(h, local_rank)
    distributed = world_size > 1
    if distributed:
        if device.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
        dist.barrier()
    return RunContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device, is_master=rank == 0,
                      distributed=distributed, grad_accum_steps=8 // world_size)  # the global batch: 8 micro-batches


def host_group(ctx):
    """The group in which ranks' hosts agree on the training clock (the stop and the warmdown read it): gloo, so
    that agreeing does not wait for the GPU (an NCCL all-reduce read back with .item() drains every rank's queue
    each step: bench/dist_step.py). CPU runs use their (gloo) default group."""
    if not ctx.distributed:
        return None
    if dist.get_backend() == "gloo":
        return dist.group.WORLD
    return dist.new_group(backend="gloo")


def max_over_ranks(value, group):
    """The largest of every rank's `value` (a float), on every rank: one fp64 all-reduce on the host; with no
    group (one process, or no wall-clock cap: host_group is not asked), `value` itself."""
    if group is None:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return t.item()


def sync_device(device):
    """Wait for queued GPU work, so that wall-clock readings include it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bf16_autocast(device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
