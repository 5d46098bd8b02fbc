"""Parameter Golf training script, built by golfc 0.1.0.

Plugins: none (the reference baseline).
Active: core, sdpa_attention, rope, relu2_mlp, unet_blocks, muon, flat_allreduce, warmdown_schedule, int8_quant, zlib_compress, token_stream_loader, train_calibration, plain_eval.
Pinned: none.

Run: torchrun --standalone --nproc_per_node=8 train_gpt.py   (any of 1, 2, 4, 8 GPUs; DEVICE=cpu for tests)
Every hyperparameter is an environment variable; see class Hyperparameters.
"""
from __future__ import annotations


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


# ==================================================================================================
# core/checks: each hyperparameter's valid range and the rules between them, checked when the run starts
# ==================================================================================================
# golfc build applies the same functions to the emitted defaults (golfc/hparams.py), so a value that passes
# the build passes here, and NUM_LAYERS=-3 in the environment is one line and exit code 2, not a traceback.
# A range is ((op, limit), ...) with op one of ">=", ">", "<="; a rule is (kind, left, right, factor, note).
import sys

RANGE_OPS = {">=": lambda v, lim: v >= lim, ">": lambda v, lim: v > lim, "<=": lambda v, lim: v <= lim}
# rule kind -> (whether it holds for the left value and the divisor factor * right, the rule in words);
# a zero divisor fails "multiple" and "even_quotient"
RULE_KINDS = {
    "multiple": (lambda left, divisor: divisor != 0 and left % divisor == 0, "{left} to be a multiple of {right}"),
    "even_quotient": (lambda left, divisor: divisor != 0 and (left // divisor) % 2 == 0, "{left} / {right} to be even"),
    "at_least": (lambda left, divisor: left >= divisor, "{left} >= {right}"),
}


def range_problem(name, value, bounds):
    """``None`` when ``value`` (or, for a list, each element) is inside every bound, else
    ``"NAME=value: expected NAME >= 1"``."""
    elements = value if isinstance(value, tuple) else (value,)
    if all(RANGE_OPS[op](v, limit) for v in elements for op, limit in bounds):
        return None
    wanted = " and ".join(f"{name} {op} {limit!r}" for op, limit in bounds)
    shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else repr(value)
    return f"{name}={shown}: expected {wanted}{' for each element' if isinstance(value, tuple) else ''}"


def rule_problem(rule, values):
    """``None`` when the rule holds for ``values`` ({NAME: value}), else one line naming both values."""
    kind, left_name, right_name, factor, note = rule
    holds, words = RULE_KINDS[kind]
    if holds(values[left_name], factor * values[right_name]):
        return None
    why = f" ({note})" if note else ""
    shown = f"{left_name}={values[left_name]!r}, {right_name}={values[right_name]!r}"
    right = right_name if factor == 1 else f"{factor} * {right_name}"
    return f"{shown}: expected {words.format(left=left_name, right=right)}{why}"


def hparam_problems(values, ranges, rules):
    """Every range problem, then (when the ranges hold) every rule problem, as one-line texts."""
    problems = [p for name, bounds in ranges.items() if (p := range_problem(name, values[name], bounds))]
    if problems:
        return problems  # a rule over an out-of-range value would only repeat it
    return [p for rule in rules if (p := rule_problem(rule, values))]


def check_hparam_values(hparams_cls, ranges=None, rules=()):
    """Exit with one line (code 2) when a hyperparameter is out of its range or breaks a rule between two of
    them. Called by the hparams section right after class Hyperparameters has read the environment."""
    names = set(ranges or {}) | {name for rule in rules for name in rule[1:3]}
    values = {name: getattr(hparams_cls, name.lower()) for name in names}
    problems = hparam_problems(values, ranges or {}, rules)
    if problems:
        print(f"error: {problems[0]}", file=sys.stderr)
        sys.exit(2)


# ==================================================================================================
# hparams: generated by golfc
# ==================================================================================================
import os

# A malformed value in the environment is one line and exit code 2, not a traceback or a late failure.
check_environment(
    ints=(
        'SEED', 'VOCAB_SIZE', 'VAL_BATCH_SIZE', 'VAL_LOSS_EVERY', 'TRAIN_LOG_EVERY', 'ITERATIONS',
        'WARMUP_STEPS', 'TRAIN_BATCH_TOKENS', 'TRAIN_SEQ_LEN', 'NUM_LAYERS', 'MODEL_DIM',
        'NUM_HEADS', 'NUM_KV_HEADS', 'COMPILE', 'MLP_MULT', 'MUON_BACKEND_STEPS', 'WARMDOWN_ITERS',
        'MUON_MOMENTUM_WARMUP_STEPS',
    ),
    floats=(
        'MAX_WALLCLOCK_SECONDS', 'GPTQ_RESERVE_SECONDS', 'GRAD_CLIP_NORM', 'ROPE_BASE',
        'LOGIT_SOFTCAP', 'QK_GAIN_INIT', 'TIED_EMBED_INIT_STD', 'MATRIX_LR', 'MUON_MOMENTUM',
        'TIED_EMBED_LR', 'EMBED_LR', 'HEAD_LR', 'SCALAR_LR', 'BETA1', 'BETA2', 'ADAM_EPS',
        'MUON_MOMENTUM_WARMUP_START', 'INT8_MIN_SCALE',
    ),
    flags=(
        'TIE_EMBEDDINGS', 'ROPE_BF16_TABLES', 'COMPILE_TUNING',
    ),
    choices={
        'DEVICE': ('auto', 'cuda', 'cpu'),
        'SDPA_BACKEND': ('auto', 'cudnn', 'flash', 'efficient', 'math'),
    },
)


class Hyperparameters:
    """Every knob is an environment variable of the same name, read once at import."""

    # -- core
    data_path = os.environ.get('DATA_PATH', './data/datasets/fineweb10B_sp1024')  # folder with fineweb_train_*.bin / fineweb_val_*.bin
    tokenizer_path = os.environ.get('TOKENIZER_PATH', './data/tokenizers/fineweb_1024_bpe.model')  # SentencePiece model used for BPB tables
    run_id = os.environ.get('RUN_ID', '')  # log name under logs/ (default: a fresh uuid4)
    seed = int(os.environ.get('SEED', 1337))  # seed for python, numpy and torch
    vocab_size = int(os.environ.get('VOCAB_SIZE', 1024))  # must equal the tokenizer's vocab size
    val_batch_size = int(os.environ.get('VAL_BATCH_SIZE', 524288))  # validation tokens per round, over all ranks and micro-batches
    val_loss_every = int(os.environ.get('VAL_LOSS_EVERY', 1000))  # validate every N steps (0: only at the end)
    train_log_every = int(os.environ.get('TRAIN_LOG_EVERY', 200))  # print train_loss every N steps
    iterations = int(os.environ.get('ITERATIONS', 20000))  # maximum optimizer steps
    warmup_steps = int(os.environ.get('WARMUP_STEPS', 20))  # untimed compile-warmup steps, after which weights, optimizers and data reset
    train_batch_tokens = int(os.environ.get('TRAIN_BATCH_TOKENS', 524288))  # tokens per optimizer step, over all ranks and micro-batches
    train_seq_len = int(os.environ.get('TRAIN_SEQ_LEN', 1024))  # sequence length for training and validation windows
    max_wallclock_seconds = float(os.environ.get('MAX_WALLCLOCK_SECONDS', 600.0))  # training wall-clock cap in seconds (0: none)
    gptq_reserve_seconds = float(os.environ.get('GPTQ_RESERVE_SECONDS', 0.0))  # under a cap, training stops this much early so that export's calibration (GPTQ) fits inside it
    grad_clip_norm = float(os.environ.get('GRAD_CLIP_NORM', 0.0))  # clip the global gradient norm (0: off)
    num_layers = int(os.environ.get('NUM_LAYERS', 9))  # transformer blocks
    model_dim = int(os.environ.get('MODEL_DIM', 512))  # residual width d
    num_heads = int(os.environ.get('NUM_HEADS', 8))  # query heads
    num_kv_heads = int(os.environ.get('NUM_KV_HEADS', 4))  # key/value heads (grouped-query attention)
    tie_embeddings = bool(int(os.environ.get('TIE_EMBEDDINGS', '1')))  # output head shares the token embedding
    rope_base = float(os.environ.get('ROPE_BASE', 10000.0))  # RoPE frequency base
    rope_bf16_tables = bool(int(os.environ.get('ROPE_BF16_TABLES', '1')))  # RoPE tables of bf16 frequencies, rounded to bf16, as the reference trains with on a GPU (0: fp32)
    logit_softcap = float(os.environ.get('LOGIT_SOFTCAP', 30.0))  # logits = c * tanh(logits / c)
    qk_gain_init = float(os.environ.get('QK_GAIN_INIT', 1.5))  # initial per-head query gain
    tied_embed_init_std = float(os.environ.get('TIED_EMBED_INIT_STD', 0.005))  # std of the tied embedding init
    compile = int(os.environ.get('COMPILE', -1))  # torch.compile the model and optimizer kernels: 1 on, 0 off, -1 on with CUDA only
    compile_tuning = bool(int(os.environ.get('COMPILE_TUNING', '0')))  # inductor coordinate-descent tuning of the compiled kernels
    device = os.environ.get('DEVICE', 'auto')  # auto (cuda if available), cuda or cpu
    eval_only = os.environ.get('EVAL_ONLY', '')  # an artifact (final_model.*.ptz) to score without training (empty: train, export, score)

    # -- plugins/sdpa_attention
    sdpa_backend = os.environ.get('SDPA_BACKEND', 'auto')  # auto (PyTorch's choice), cudnn, flash, efficient or math

    # -- plugins/relu2_mlp
    mlp_mult = int(os.environ.get('MLP_MULT', 2))  # MLP hidden width = MLP_MULT * MODEL_DIM

    # -- plugins/muon
    matrix_lr = float(os.environ.get('MATRIX_LR', 0.04))  # Muon learning rate for 2-D block matrices
    muon_momentum = float(os.environ.get('MUON_MOMENTUM', 0.95))  # Muon Nesterov momentum (after warmup)
    muon_backend_steps = int(os.environ.get('MUON_BACKEND_STEPS', 5))  # Newton-Schulz iterations
    tied_embed_lr = float(os.environ.get('TIED_EMBED_LR', 0.05))  # Adam lr of the tied embedding
    embed_lr = float(os.environ.get('EMBED_LR', 0.6))  # Adam lr of the embedding when untied
    head_lr = float(os.environ.get('HEAD_LR', 0.008))  # Adam lr of the output head when untied
    scalar_lr = float(os.environ.get('SCALAR_LR', 0.04))  # Adam lr of vectors, scalars and skip weights
    beta1 = float(os.environ.get('BETA1', 0.9))  # Adam beta1
    beta2 = float(os.environ.get('BETA2', 0.95))  # Adam beta2
    adam_eps = float(os.environ.get('ADAM_EPS', 1e-08))  # Adam epsilon

    # -- plugins/warmdown_schedule
    warmdown_iters = int(os.environ.get('WARMDOWN_ITERS', 1200))  # length of the final linear LR decay, in steps
    muon_momentum_warmup_start = float(os.environ.get('MUON_MOMENTUM_WARMUP_START', 0.85))  # Muon momentum at step 0
    muon_momentum_warmup_steps = int(os.environ.get('MUON_MOMENTUM_WARMUP_STEPS', 500))  # steps to reach MUON_MOMENTUM

    # -- plugins/int8_quant
    int8_min_scale = float(os.environ.get('INT8_MIN_SCALE', 0.007874015748031496))  # floor of the per-row scale: the reference's 1/127 (0: no floor)


# A value out of its range, or two that do not fit together, is one line and exit code 2.
check_hparam_values(
    Hyperparameters,
    ranges={
        'SEED': (('>=', 0), ('<=', 4294967295)),
        'VOCAB_SIZE': (('>=', 1),),
        'VAL_BATCH_SIZE': (('>=', 1),),
        'VAL_LOSS_EVERY': (('>=', 0),),
        'TRAIN_LOG_EVERY': (('>=', 0),),
        'ITERATIONS': (('>=', 0),),
        'WARMUP_STEPS': (('>=', 0),),
        'TRAIN_BATCH_TOKENS': (('>=', 1),),
        'TRAIN_SEQ_LEN': (('>=', 1),),
        'MAX_WALLCLOCK_SECONDS': (('>=', 0.0),),
        'GPTQ_RESERVE_SECONDS': (('>=', 0.0),),
        'GRAD_CLIP_NORM': (('>=', 0.0),),
        'NUM_LAYERS': (('>=', 1),),
        'MODEL_DIM': (('>=', 1),),
        'NUM_HEADS': (('>=', 1),),
        'NUM_KV_HEADS': (('>=', 1),),
        'ROPE_BASE': (('>', 0.0),),
        'LOGIT_SOFTCAP': (('>', 0.0),),
        'TIED_EMBED_INIT_STD': (('>=', 0.0),),
        'COMPILE': (('>=', -1), ('<=', 1)),
        'MLP_MULT': (('>=', 1),),
        'MATRIX_LR': (('>=', 0.0),),
        'MUON_MOMENTUM': (('>=', 0.0), ('<=', 1.0)),
        'MUON_BACKEND_STEPS': (('>=', 1),),
        'TIED_EMBED_LR': (('>=', 0.0),),
        'EMBED_LR': (('>=', 0.0),),
        'HEAD_LR': (('>=', 0.0),),
        'SCALAR_LR': (('>=', 0.0),),
        'BETA1': (('>=', 0.0), ('<=', 1.0)),
        'BETA2': (('>=', 0.0), ('<=', 1.0)),
        'ADAM_EPS': (('>', 0.0),),
        'WARMDOWN_ITERS': (('>=', 0),),
        'MUON_MOMENTUM_WARMUP_START': (('>=', 0.0), ('<=', 1.0)),
        'MUON_MOMENTUM_WARMUP_STEPS': (('>=', 0),),
        'INT8_MIN_SCALE': (('>=', 0.0),),
    },
    rules=(
        ('multiple', 'MODEL_DIM', 'NUM_HEADS', 1, 'the head dimension is MODEL_DIM / NUM_HEADS'),  # core
        ('multiple', 'NUM_HEADS', 'NUM_KV_HEADS', 1, 'query heads share key/value heads in equal groups'),  # core
        ('even_quotient', 'MODEL_DIM', 'NUM_HEADS', 1, 'RoPE rotates pairs of the head dimension'),  # core
        ('multiple', 'TRAIN_BATCH_TOKENS', 'TRAIN_SEQ_LEN', 8, 'every step is 8 micro-batches of whole sequences'),  # core
        ('at_least', 'VAL_BATCH_SIZE', 'TRAIN_SEQ_LEN', 8, 'one window per rank and micro-batch, on 1 to 8 GPUs'),  # plain_eval
    ),
)


# ==================================================================================================
# core/data: token shards, validation tokens, tokenizer and bits-per-byte lookup tables
# ==================================================================================================


# Shard format: 256 little-endian int32 header ([0] magic, [1] version, [2] num_tokens), then
# num_tokens little-endian uint16 tokens. Each document is [BOS=1] + tokens, no EOS.
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_BYTES = 256 * 4


def read_shard_header(path):
    """num_tokens of one shard after checking its header and size; a malformed file is a one-line error."""
    if not os.path.isfile(path):
        raise RunInputError(f"{path}: not a file, expected a token shard")
    header = np.fromfile(path, dtype="<i4", count=256)
    if header.size != 256:
        raise RunInputError(f"{path}: {os.path.getsize(path)} bytes, shorter than the {SHARD_HEADER_BYTES}-byte header")
    if int(header[0]) != SHARD_MAGIC:
        raise RunInputError(f"{path}: magic {int(header[0])}, expected {SHARD_MAGIC}")
    if int(header[1]) != SHARD_VERSION:
        raise RunInputError(f"{path}: version {int(header[1])}, expected {SHARD_VERSION}")
    num_tokens = int(header[2])
    expected = SHARD_HEADER_BYTES + 2 * num_tokens
    actual = os.path.getsize(path)
    if num_tokens < 0 or actual != expected:
        raise RunInputError(f"{path}: {actual} bytes, expected {expected} "
                            f"({SHARD_HEADER_BYTES}-byte header + 2 * {num_tokens} tokens)")
    return num_tokens


def load_data_shard(path, vocab_size=None):
    """All tokens of one shard as a uint16 CPU tensor; with vocab_size, every id must be below it."""
    num_tokens = read_shard_header(path)
    tokens = np.fromfile(path, dtype="<u2", count=num_tokens, offset=SHARD_HEADER_BYTES)
    if vocab_size is not None and tokens.size and int(tokens.max()) >= vocab_size:
        raise RunInputError(f"{path}: token id {int(tokens.max())}, expected ids below VOCAB_SIZE={vocab_size}")
    return torch.from_numpy(tokens)


def shard_files(pattern):
    """Sorted shard paths of a glob; none found is a one-line FileNotFoundError naming the glob."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no data shards match {pattern} (check DATA_PATH)")
    return files


def check_shards(pattern):
    """Every shard of a glob checked by its header and size (no token reads): the total token count. A corrupt last
    shard fails at start-up, not hours into training when the stream reaches it."""
    total = sum(read_shard_header(f) for f in shard_files(pattern))
    if total == 0:
        raise RunInputError(f"{pattern}: every shard is empty, expected tokens")
    return total


def load_validation_tokens(pattern, seq_len, vocab_size=None):
    """All validation shards concatenated, cut to a multiple of seq_len plus one (int32, CPU)."""
    tokens = torch.cat([load_data_shard(f, vocab_size) for f in shard_files(pattern)])
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    if usable <= 0:
        raise RunInputError(f"{pattern}: {tokens.numel()} validation tokens, too few for TRAIN_SEQ_LEN={seq_len}")
    return tokens[: usable + 1].to(torch.int32)


# --------------------------------------------------------------------------------------------------
# Tokenizer and BPB tables: val_bpb = (val_loss / ln 2) * (tokens / bytes), bytes counted per target
# token from the piece table (not by decoding), so that the count is exact and tokenizer-agnostic.
# --------------------------------------------------------------------------------------------------
def load_tokenizer(h):
    if not os.path.isfile(h.tokenizer_path):
        raise FileNotFoundError(f"TOKENIZER_PATH={h.tokenizer_path}: no such file")
    try:
        sp = spm.SentencePieceProcessor(model_file=h.tokenizer_path)
    except (RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunInputError(f"TOKENIZER_PATH={h.tokenizer_path}: not a SentencePiece model ({reason})") from None
    if sp.vocab_size() != h.vocab_size:
        raise RunInputError(f"{h.tokenizer_path}: tokenizer vocab_size is {sp.vocab_size()}, but VOCAB_SIZE={h.vocab_size}")
    return sp


def build_bpb_luts(sp, vocab_size, device):
    """(base_bytes int16, has_leading_space bool, is_boundary bool), each (vocab_size,), on device.

    bytes(target) = base_bytes[target] + (has_leading_space[target] and not is_boundary[previous]):
    the U+2581 word marker stands for one space byte, except right after a boundary (BOS/control).
    """
    base_bytes = np.zeros(vocab_size, dtype=np.int16)
    has_leading_space = np.zeros(vocab_size, dtype=np.bool_)
    is_boundary = np.ones(vocab_size, dtype=np.bool_)  # ids past the tokenizer's table count as boundaries
    for t in range(min(sp.vocab_size(), vocab_size)):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue  # 0 bytes, boundary
        is_boundary[t] = False
        if sp.is_byte(t):
            base_bytes[t] = 1  # byte-fallback piece <0xNN>
            continue
        piece = sp.id_to_piece(t)
        if piece.startswith("\u2581"):
            has_leading_space[t] = True
            piece = piece[1:]
        base_bytes[t] = len(piece.encode("utf-8"))
    return tuple(torch.from_numpy(a).to(device) for a in (base_bytes, has_leading_space, is_boundary))


def target_bytes(prev_ids, target_ids, luts):
    """UTF-8 bytes of each target token given the token before it; any shape, int16."""
    base_bytes, has_leading_space, is_boundary = luts
    return base_bytes[target_ids] + (has_leading_space[target_ids] & ~is_boundary[prev_ids]).to(torch.int16)


# --------------------------------------------------------------------------------------------------
# Evaluation windows: the eval_windows slot plans them, the eval adapter (a scorer) scores them
# --------------------------------------------------------------------------------------------------
class EvalWindows:
    """The windows an evaluation scores. Span (start, first_scored) reads tokens start .. start + window
    (inputs start .. start + window - 1) and scores targets first_scored + 1 .. start + window; over all
    spans every target 1 .. len(val_tokens) - 1 is scored exactly once. batch_seqs windows per forward on each
    rank; pad: pad the last batch to batch_seqs rows (one shape, so a compiled model compiles once)."""

    def __init__(self, window, spans, batch_seqs, pad):
        self.window, self.spans, self.batch_seqs, self.pad = window, spans, batch_seqs, pad


def rank_share(items, ctx):
    """This rank's contiguous share of a sequence (the ranks in order cover it exactly once)."""
    return items[len(items) * ctx.rank // ctx.world_size : len(items) * (ctx.rank + 1) // ctx.world_size]


def window_batches(plan, spans, val_tokens, device):
    """Yield (x, y, batch) over `spans` in runs of plan.batch_seqs: x, y (rows, window) int64 on device;
    batch lists the spans of the real rows (with plan.pad, copies of the last window fill the last batch)."""
    offsets = torch.arange(plan.window + 1)
    for b in range(0, len(spans), plan.batch_seqs):
        batch = spans[b : b + plan.batch_seqs]
        padding = [batch[-1][0]] * (plan.batch_seqs - len(batch)) if plan.pad else []
        starts = torch.tensor([s for s, _ in batch] + padding)
        tokens = val_tokens[starts[:, None] + offsets].to(device, torch.int64, non_blocking=True)
        yield tokens[:, :-1], tokens[:, 1:], batch


# The score ledger: ledger_scores counts the optimizer steps (any torch optimizer) a scorer takes while it scores.
SCORE_LEDGER = {"updates": 0}


def ledger_part(positions, nll, nbytes, seen=-1):
    """A scored piece with its ledger: per position `updates`, the optimizer steps taken before it was scored (when),
    and `seen`, the last target any update behind its score learned from (-1: none; declared by the scorer, a scalar
    or one per position). Score-first holds where seen < position."""
    seen = torch.as_tensor(seen, device=positions.device).expand_as(positions)
    return positions, nll, nbytes, torch.full_like(positions, SCORE_LEDGER["updates"]), seen


def span_scores(plan, batch, nll, nbytes, device, seen=-1):
    """Ledger parts of each real row of a batch: the columns from its first scored target on. seen: -1, or the last
    position the updates behind the scores learned from (an int, or one per row: SLOT's per-window deltas)."""
    out = []
    for i, (start, first_scored) in enumerate(batch):
        keep = first_scored - start  # columns before this are context, scored by an earlier window
        positions = torch.arange(first_scored + 1, start + plan.window + 1, device=device)
        out.append(ledger_part(positions, nll[i, keep:], nbytes[i, keep:], seen if isinstance(seen, int) else seen[i]))
    return out


def ledger_scores(model, val_tokens, h, ctx, final):
    """score_validation (the eval_adapter slot) with the optimizer steps it takes counted into the ledger."""
    from torch.optim.optimizer import register_optimizer_step_post_hook  # sees every torch optimizer step

    SCORE_LEDGER["updates"] = 0
    counter = register_optimizer_step_post_hook(lambda *_: SCORE_LEDGER.update(updates=SCORE_LEDGER["updates"] + 1))
    try:
        return score_validation(model, val_tokens, h, ctx, final)
    finally:
        counter.remove()


def collect_scores(parts, device):
    """Scores from ledger parts; empty when this rank scored nothing (more ranks than windows)."""
    empty = torch.empty(0, device=device)
    parts = parts or [ledger_part(empty.long(), empty.float(), empty.to(torch.int16))]
    return Scores(*(torch.cat(column) for column in zip(*parts)))


# ==================================================================================================
# core/model: the GPT skeleton. Slots filled by plugins: PositionEncoding, attention_kernel, QKV_PRE_ROPE,
# VALUE_HOOKS, QK_TRANSFORMS, ATTENTION_POST (in CausalSelfAttention), Block, MLP, layer_schedule, SkipMixer (in
# BlockStack), EMBEDDING_PRE_NORM, EMBEDDING_EXTRAS, loss_from_hidden (in GPT). Every hook inside a forward gets
# its ForwardContext.
# ==================================================================================================


# Small "control" tensors: kept in fp32 during training and in the artifact, optimised by Adam. A plugin adds
# the names of its own with CONTROL_TENSOR_NAME_PATTERNS.extend(...) at the top of its section.
CONTROL_TENSOR_NAME_PATTERNS = ["attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight"]


PARAM_TAGS = {}  # state-dict name -> tags of the GPT built last (for code that sees a state dict, not the model)


def tag_param(p, control=None, group=None, quant=None):
    """Tag a parameter, for the core and the default plugins to read in preference to its name: control=True
    keeps it in fp32 in training and in the artifact (a control tensor; False: not one, whatever its name);
    group="adam" or "muon" picks its optimizer; quant="int8", "fp16" or "fp32" its export format. Returns p."""
    given = {"control": control, "group": group, "quant": quant}
    p.golfc_tags = {**getattr(p, "golfc_tags", {}), **{k: v for k, v in given.items() if v is not None}}
    return p


def param_tag(name, key, p=None):
    """A parameter's tag `key` (from p itself, else from PARAM_TAGS by state-dict name), None when untagged."""
    return (getattr(p, "golfc_tags", {}) if p is not None else PARAM_TAGS.get(name, {})).get(key)


def is_control_tensor(name, p=None):
    """The control tag when a plugin set one, else the baseline's rule: the name contains a control pattern."""
    tagged = param_tag(name, "control", p)
    return tagged if tagged is not None else any(s in name for s in CONTROL_TENSOR_NAME_PATTERNS)


def rms_norm(x):
    """RMSNorm over the last dim, no learned weight."""
    return F.rms_norm(x, (x.size(-1),))


class CastedLinear(nn.Linear):
    """Linear layer without bias whose fp32 weight is cast to the activation dtype at matmul time.

    Every matrix the optimizer treats as a matrix (Muon) and the quantizer quantizes is one of these.
    """

    def __init__(self, in_features, out_features, zero_init=False):
        super().__init__(in_features, out_features, bias=False)  # default (Kaiming-uniform) init
        if zero_init:
            nn.init.zeros_(self.weight)
        # the weight-transform point (slot weight_transform, e.g. QAT's fake quantization); None: the weight as is
        self.weight_transform = LinearWeightTransform(self) if LinearWeightTransform is not None else None

    def forward(self, x):
        w = self.weight if self.weight_transform is None else self.weight_transform(self.weight)
        return F.linear(x, w.to(x.dtype))


class CausalSelfAttention(nn.Module):
    """GQA attention: QK-norm, RoPE, per-head query gain, then the attention_kernel slot."""

    def __init__(self, h, layer):
        super().__init__()
        d, H, Hkv = h.model_dim, h.num_heads, h.num_kv_heads
        if d % H != 0 or H % Hkv != 0 or (d // H) % 2 != 0:
            raise RunInputError(f"MODEL_DIM={d}, NUM_HEADS={H}, NUM_KV_HEADS={Hkv}: need d % H == 0, H % Hkv == 0, even head_dim")
        self.h, self.layer = h, layer
        self.num_heads, self.num_kv_heads, self.head_dim = H, Hkv, d // H
        kv_dim = Hkv * self.head_dim
        self.c_q = CastedLinear(d, d)
        self.c_k = CastedLinear(d, kv_dim)
        self.c_v = CastedLinear(d, kv_dim)
        self.proj = CastedLinear(d, d, zero_init=True)  # each block starts as the identity
        self.q_gain = nn.Parameter(torch.full((H,), h.qk_gain_init, dtype=torch.float32))
        self.rotary = PositionEncoding(self.head_dim, h, layer)  # position_encoding slot (default: rope)
        self.post = nn.ModuleList([cls(h, layer) for cls in ATTENTION_POST])  # attention_post slot (output gates)

    def forward(self, x, fctx=None):  # x (B, T, d); fctx: the forward's ForwardContext (None: no hooks need it)
        B, T, d = x.shape
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        # Heads stay in the matmuls' (B, T, H, D) memory order and the kernel gets (B, H, T, D) views: SDPA returns
        # y in q's memory order, so merging the heads needs no transpose copy (bench/RESULTS.md, "memory order").
        q = rms_norm(self.c_q(x).view(B, T, H, D))  # (B, T, H, D)
        k = rms_norm(self.c_k(x).view(B, T, Hkv, D))  # (B, T, Hkv, D)
        v = self.c_v(x).view(B, T, Hkv, D)  # (B, T, Hkv, D)
        for fn in QKV_PRE_ROPE:
            q, k, v = fn(q, k, v, self.layer, self.h, fctx)
        q, k = self.rotary(q), self.rotary(k)
        for hook in (fctx.value_hooks if fctx is not None else ()):
            v = hook(v, self.layer, fctx)  # value-side modules of the GPT (value embeddings)
        q = (q * self.q_gain.to(q.dtype)[None, None, :, None]).transpose(1, 2)  # (B, H, T, D) view
        k = k.transpose(1, 2)  # (B, Hkv, T, D) view
        for fn in QK_TRANSFORMS:
            q, k = fn(q, k, self.layer, self.h)
        y = attention_kernel(q, k, v.transpose(1, 2), self.h, self.layer, fctx).transpose(1, 2)  # (B, T, H, D)
        for post in self.post:
            y = post(y, v, x, fctx)  # y (B, T, H, D), v (B, T, Hkv, D), x (B, T, d) this attention's input
        return self.proj(y.reshape(B, T, d))


class ForwardContext:
    """What one forward pass shares with the hooks inside it: made once per GPT.hidden call, handed to the
    block stack, every block and attention (value hooks, q/k/v transforms before RoPE). No tensor op: the
    baseline's graph is unchanged, and torch.compile traces it as plain Python state."""

    def __init__(self, ids, x0, phases, value_hooks):
        self.ids = ids  # (B, T) int64: the input tokens (value embeddings, document masks)
        self.x0 = x0  # (B, T, d): the normed embedding the blocks mix back in
        self.phases = phases  # names of the run phases switched on (run_events), e.g. ("recurrence",)
        self.value_hooks = value_hooks  # GPT.value_hooks: the value_hook slot's modules
        self.layer = None  # index of the block running now (stack.blocks[layer])
        self.depth = None  # position of that block in the layer schedule (differs from layer under recurrence)
        self.schedule = None  # the layer schedule this forward runs (a tuple of layer indices, set by BlockStack)
        self.cache = {}  # this forward's own cache: a mask built at the first layer and read by the rest


class BlockStack(nn.Module):
    """The blocks (block slot: Block(h, layer), state-dict names stack.blocks.N), run in the layer schedule's
    order (layer_schedule slot), with the skip mixer (skip_mixer slot) around each; the mixer registers its
    parameters here (stack.skip_weights)."""

    def __init__(self, h):
        super().__init__()
        self.h = h
        self.blocks = nn.ModuleList([Block(h, i) for i in range(h.num_layers)])
        self.mixer = SkipMixer(h, self)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        fctx.schedule = layer_schedule(self.h, fctx.phases)
        for depth, layer in enumerate(fctx.schedule):
            fctx.layer, fctx.depth = layer, depth
            x = self.mixer.before(self, x, depth, fctx)
            x = self.blocks[layer](x, x0, fctx)
            x = self.mixer.after(self, x, depth, fctx)
        return x


class GPT(nn.Module):
    """Token embedding (+ pre-norm extras) -> RMSNorm -> embedding extras -> BlockStack -> RMSNorm -> (tied)
    head -> softcap -> CE."""

    def __init__(self, h):
        super().__init__()
        self.logit_softcap = h.logit_softcap
        self.phases = ()  # the run phases switched on, sorted (set by switch_phase, read by every forward)
        self.tok_emb = nn.Embedding(h.vocab_size, h.model_dim)
        self.pre_norm = nn.ModuleList([cls(h) for cls in EMBEDDING_PRE_NORM])
        self.extras = nn.ModuleList([cls(h) for cls in EMBEDDING_EXTRAS])
        self.stack = BlockStack(h)
        self.value_hooks = nn.ModuleList([cls(h) for cls in VALUE_HOOKS])
        self.lm_head = None if h.tie_embeddings else CastedLinear(h.model_dim, h.vocab_size, zero_init=True)
        if h.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=h.tied_embed_init_std)
        PARAM_TAGS.clear()
        PARAM_TAGS.update((n, p.golfc_tags) for n, p in self.named_parameters() if hasattr(p, "golfc_tags"))

    def hidden(self, ids):
        """ids (B, T) int64 -> the last hidden state (B, T, d), before the final norm."""
        x = self.tok_emb(ids)  # (B, T, d)
        for extra in self.pre_norm:
            x = extra(ids, x)
        x = rms_norm(x)
        for extra in self.extras:
            x = extra(ids, x)
        fctx = ForwardContext(ids, x, self.phases, self.value_hooks)
        return self.stack(x, x, fctx)  # x0 = x: the blocks mix the embedding back in

    def head(self, hidden):
        """hidden (B, T, d) -> logits before the softcap (B, T, V): final norm, (tied) head."""
        x = rms_norm(hidden)
        return F.linear(x, self.tok_emb.weight) if self.lm_head is None else self.lm_head(x)

    def logits(self, hidden):
        """hidden (B, T, d) -> softcapped logits (B, T, V): c * tanh(head(hidden) / c)."""
        return self.logit_softcap * torch.tanh(self.head(hidden) / self.logit_softcap)

    def forward(self, ids, targets, reduction="mean"):
        """ids, targets (B, T) int64 -> mean loss, or per-token NLL (B, T) fp32 with reduction="none"."""
        if loss_from_hidden is not None:  # loss slot (a fused softcapped cross-entropy): the same loss
            return loss_from_hidden(self, self.hidden(ids), targets, reduction)
        logits = self.logits(self.hidden(ids))
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)
        return loss.view_as(targets) if reduction == "none" else loss


def cast_params_for_training(model, device):
    """On CUDA, as the reference does: round every parameter to bf16 (it casts the whole model to bf16), then
    store CastedLinear weights and vectors / control tensors in fp32 again (their values stay bf16 numbers
    until the first step) and everything else in bf16 (at the baseline's shapes, the token embedding).
    On CPU everything stays fp32, unrounded.
    """
    if device.type != "cuda":
        return
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, CastedLinear)}
    for name, p in model.named_parameters():
        keep_fp32 = id(p) in linear_weights or p.ndim < 2 or is_control_tensor(name, p)
        p.data = p.data.to(torch.bfloat16).to(torch.float32 if keep_fp32 else torch.bfloat16)


# ==================================================================================================
# plugins/sdpa_attention: causal scaled-dot-product attention with grouped-query attention
# ==================================================================================================
from torch.nn.attention import SDPBackend, sdpa_kernel



SDPA_BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
# enable_gqa arrived in torch 2.5; the memory-efficient kernel rejects it, so for it (and on older torch)
# k and v are expanded to all query heads instead: same result, more memory. cuDNN takes GQA natively,
# faster than expanded k and v (bench/RESULTS.md).
SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)
SDPA_NATIVE_GQA = ("auto", "cudnn", "flash", "math")


def sdpa_attention(q, k, v, h, layer=None, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D); causal, scale 1/sqrt(D); the same on every layer."""
    backend = h.sdpa_backend  # one of its declared choices: the hparams section refuses others at start-up
    gqa = q.size(1) != k.size(1)
    if gqa and not (SDPA_HAS_GQA and backend in SDPA_NATIVE_GQA):
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)  # (B, H, T, D)
        gqa = False
    kwargs = {"enable_gqa": True} if gqa else {}
    if backend == "auto":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kwargs)
    with sdpa_kernel(SDPA_BACKENDS[backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kwargs)


# ==================================================================================================
# plugins/rope: the baseline's rotary position encoding (half-split rotation of each head's q and k),
# with cos/sin tables cached for TRAIN_SEQ_LEN positions and grown once for longer evaluations.
# Partial RoPE (plugins/partial_rope, ROPE_DIMS): only the first ROPE_DIMS dims of a head are rotated; every
# rope form (rope, ntk_rope, yarn_rope) derives from Rotary and honours it.
# ==================================================================================================



def rope_dims_of(h, head_dim):
    """The dims of each head that RoPE rotates: ROPE_DIMS when plugins/partial_rope is built in (0: all of them),
    else the whole head."""
    dims = getattr(h, "rope_dims", 0)
    return dims if dims > 0 else head_dim


def rope_rotate_half(x, cos, sin):
    """Half-split rotation of x (..., R): pairs (x[i], x[i + R/2]) turned by the angles of cos/sin (..., R/2)."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


class Rotary(nn.Module):
    """RoPE with the half-split rotation on the first rope_dims dims of a head (all by default); cos/sin tables
    cached for max_len positions.

    bf16_tables=True reproduces the tables the reference baseline trains with on a GPU. It casts the whole
    model to bf16 (buffers included), so its frequencies are bf16, and builds the tables inside its compiled
    graph, where inductor forms the positions and the products position * frequency and their cos/sin in fp32
    and rounds only the stored tables to bf16. (Eagerly, the positions and products would round to bf16 too:
    positions above 256 to even numbers, angles off by up to 2 rad at position 1000. golfc built them that way
    until 2026-12-04 and trained 0.04 bpb worse at 300 steps; bench/RESULTS.md.) ROPE_BF16_TABLES=0: fp32
    frequencies and tables.
    """

    def __init__(self, head_dim, base, max_len, bf16_tables=False, rope_dims=None):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.rope_dims = head_dim if rope_dims is None else rope_dims
        if self.rope_dims % 2 or not 2 <= self.rope_dims <= head_dim:
            raise RunInputError(f"ROPE_DIMS={self.rope_dims}: expected an even number from 2 to the head dimension "
                                f"{head_dim} (MODEL_DIM / NUM_HEADS), or 0 for all")
        self.table_dtype = torch.bfloat16 if bf16_tables else torch.float32
        self._build(max_len, None)

    def frequencies(self, base, device):
        """(rope_dims/2,) fp32: base^(-2i/rope_dims), i = 0 .. rope_dims/2 - 1 (the subclasses rescale them)."""
        return 1.0 / (base ** (torch.arange(0, self.rope_dims, 2, dtype=torch.float32, device=device) / self.rope_dims))

    def tables(self, inv_freq, seq_len, device):
        """cos and sin (1, seq_len, 1, rope_dims/2) in the table dtype; frequencies rounded to it first."""
        positions = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = torch.outer(positions, inv_freq.to(self.table_dtype).float())  # (T, R/2), products in fp32
        return freqs.cos().to(self.table_dtype)[None, :, None], freqs.sin().to(self.table_dtype)[None, :, None]

    def _build(self, seq_len, device):
        cos, sin = self.tables(self.frequencies(self.base, device), seq_len, device)
        self.register_buffer("cos", cos, persistent=False)  # (1, T, 1, R/2)
        self.register_buffer("sin", sin, persistent=False)

    def rotate(self, x, cos, sin):
        """x (B, T, H, D) with tables for its T positions: the first rope_dims dims rotated, the rest as they are."""
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        if self.rope_dims == x.size(-1):
            return rope_rotate_half(x, cos, sin)
        rd = self.rope_dims  # partial RoPE: the other D - rd dims carry no position signal
        return torch.cat((rope_rotate_half(x[..., :rd], cos, sin), x[..., rd:]), dim=-1)

    def forward(self, x):  # x (B, T, H, D)
        T = x.size(1)
        if T > self.cos.size(1):  # longer than any sequence seen so far: grow the tables once
            self._build(T, self.cos.device)
        return self.rotate(x, self.cos[:, :T], self.sin[:, :T])

    def grow_positions(self, seq_len):
        """Tables for seq_len positions, built outside a compiled graph (core ensure_positions)."""
        if self.cos.size(1) < seq_len:
            self._build(seq_len, self.cos.device)


def rope_position_encoding(head_dim, h, layer):
    """The position_encoding slot's default: the baseline's RoPE, base ROPE_BASE, tables for TRAIN_SEQ_LEN."""
    return Rotary(head_dim, h.rope_base, h.train_seq_len, h.rope_bf16_tables, rope_dims_of(h, head_dim))


# ==================================================================================================
# plugins/relu2_mlp: feed-forward block y = proj(relu(fc(x))^2)   (relu^2: modded-nanogpt)
# ==================================================================================================




class ReluSquaredMLP(nn.Module):
    """d -> MLP_MULT * d -> d with relu(x)^2 between: sparse like relu, smooth at 0; no biases."""

    def __init__(self, h, layer):
        super().__init__()
        hidden = h.mlp_mult * h.model_dim
        self.fc = CastedLinear(h.model_dim, hidden)
        self.proj = CastedLinear(hidden, h.model_dim, zero_init=True)  # each block starts as the identity

    def forward(self, x, fctx=None):  # (B, T, d) -> (B, T, d); fctx: the forward's ForwardContext (unused here)
        return self.proj(torch.relu(self.fc(x)).square())


# ==================================================================================================
# plugins/unet_blocks: the baseline's block, layer schedule and skip mixer: pre-norm blocks with residual
# mixing to x0, run in order, and U-Net skips between the encoder half and the decoder half (modded-nanogpt)
# ==================================================================================================




class UNetBlock(nn.Module):
    """Pre-norm attention and MLP (block_norm slot: rms_norm by default), each scaled per channel, after mixing the
    stream with the embedding x0."""

    def __init__(self, h, layer):
        super().__init__()
        d = h.model_dim
        self.h, self.layer = h, layer
        self.attn = CausalSelfAttention(h, layer)
        self.mlp = MLP(h, layer)
        self.attn_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))).float())  # (2, d)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0  # learned blend of the stream with the embedding
        x = x + self.attn_scale.to(x.dtype) * self.attn(block_norm(x, self.layer, self.h, fctx), fctx)
        return x + self.mlp_scale.to(x.dtype) * self.mlp(block_norm(x, self.layer, self.h, fctx), fctx)


def unet_block_norm(x, layer, h, fctx):
    """The block_norm slot's default: the baseline's pre-norm, RMSNorm without a learned weight."""
    return rms_norm(x)


def unet_layer_schedule(h, phases):
    """Every block once, in order: 0, 1, .., NUM_LAYERS-1."""
    return tuple(range(h.num_layers))


def unet_schedules(h):
    """Every layer schedule a run can take: no phase, then the run_events' declared phases (RunEvents.phases of
    each class) switched on one by one in the order of their fractions, as the compile warmup and the timed loop
    switch them. A skip mixer sizes its weights by the longest (depth recurrence lengthens the schedule)."""
    plan = sorted((float(f), name) for cls in RUN_EVENTS for name, f in dict(cls.phases).items())
    return [layer_schedule(h, tuple(sorted(name for _, name in plan[:i]))) for i in range(len(plan) + 1)]


class UNetSkips:
    """The first half of the schedule's positions (len(fctx.schedule) // 2: the encoder) push their outputs; each
    later position i first adds skip_weights[i - half] * pop() while weights and saved outputs last (the stack
    owns skip_weights: state-dict name stack.skip_weights, one row per skip of the longest schedule)."""

    def __init__(self, h, stack):
        self.num_skip = max(min(len(s) // 2, len(s) - len(s) // 2) for s in unet_schedules(h))
        stack.skip_weights = nn.Parameter(torch.ones(self.num_skip, h.model_dim))

    def before(self, stack, x, depth, fctx):  # x (B, T, d), before the block at position `depth`
        skips, i = fctx.cache.setdefault("unet_skips", []), depth - len(fctx.schedule) // 2
        if 0 <= i < self.num_skip and skips:
            x = self.mix(stack, x, i, skips.pop())
        return x

    def mix(self, stack, x, i, skip):  # decoder position i: x + skip_weights[i] * skip
        return x + stack.skip_weights[i].to(x.dtype) * skip

    def after(self, stack, x, depth, fctx):  # x (B, T, d), the block's output
        if depth < len(fctx.schedule) // 2:
            fctx.cache.setdefault("unet_skips", []).append(x)
        return x


# ==================================================================================================
# plugins/muon: Muon for the block matrices, Adam for embeddings, head and control tensors
# Muon: K. Jordan, modded-nanogpt (Nesterov momentum, then Newton-Schulz orthogonalisation)
# ==================================================================================================



MUON_NS_COEFFS = (3.4445, -4.7750, 2.0315)  # quintic iteration tuned for speed, not exact convergence


def muon_newton_schulz(G, steps):
    """Approximately orthogonalise a stack of matrices: G (n, r, c) with r <= c -> (n, r, c) bf16.

    Batched matmuls over the stack; per matrix it is the same math as one call on that matrix.
    """
    a, b, c = MUON_NS_COEFFS
    X = G.bfloat16()
    X = X / (torch.linalg.vector_norm(X, dim=(1, 2), keepdim=True) + 1e-7)  # ||X||_F <= 1
    for _ in range(steps):
        A = X @ X.mT  # (n, r, r)
        X = a * X + (b * A + c * (A @ A)) @ X
    return X


class Muon(torch.optim.Optimizer):
    """buf = m*buf + g;  g' = g + m*buf;  p -= lr * NS(g') * max(1, rows/cols)^0.5.

    Matrices are grouped by (transposed) shape and orthogonalised as one stack, with multi-tensor ops around
    it (a handful of launches per step, not several per matrix: on eight GPUs each rank's step is short and
    the host's launches count). With several ranks, rank r handles the matrices whose index within their shape
    group is r mod world_size, and one all-reduce of a flat bf16 buffer shares every update (gradients must
    already be averaged).
    """

    def __init__(self, params, lr, momentum, backend_steps, ctx, compile_ns=False, h=None, adam=None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "backend_steps": backend_steps})
        self.rank, self.world_size, self.distributed = ctx.rank, ctx.world_size, ctx.distributed
        self.h, self.adam = h, adam  # for the transforms' setup: their knobs, the Adam optimizer built beside it
        self._scales = {}  # shapes of a stack's matrices -> their max(1, rows/cols)^0.5, (n, 1, 1) fp32
        self.transforms = list(MUON_TRANSFORMS)  # muon_transform slot: stages of the update, in order
        for t in self._stage("setup"):
            t(self)
        # golfc build refuses two plugins declaring one exclusive stage (Impl.exclusive, the authoritative check); this
        # catches what it cannot see: a run-time object defining the stage undeclared (else the first wins silently)
        for stage in ("orthogonalise", "exchange"):
            if len(self._stage(stage)) > 1:
                owners = [type(t).__name__ for t in self.transforms if hasattr(t, stage)]
                raise RunInputError(f"Muon transforms {' and '.join(owners)} both define {stage}(), which one may; "
                                    f"expected each plugin defining it to declare Impl(exclusive=({stage!r},))")
        orthogonalise = (self._stage("orthogonalise") or [muon_newton_schulz])[0]  # a transform's own, else NS5
        self.newton_schulz = torch.compile(orthogonalise) if compile_ns else orthogonalise
        self.exchange = (self._stage("exchange") or [self._all_reduce_updates])[0]

    def _stage(self, name):
        """The transforms' methods for one stage (setup, before_update, before_orthogonalise, orthogonalise,
        after_orthogonalise)."""
        return [getattr(t, name) for t in self.transforms if hasattr(t, name)]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            for t in self._stage("before_update"):
                t(params, group, self)  # e.g. decoupled weight decay, on every matrix of the group
            stacks = self._my_stacks(params)
            updates = self._orthogonalised_updates(group, params, stacks)  # index -> bf16 update
            mine = list(updates)
            if self.distributed:
                self.exchange(params, updates, group, self)  # every rank applies every rank's updates
            elif mine:
                torch._foreach_add_([params[i] for i in mine], [updates[i] for i in mine], alpha=-group["lr"])

    @staticmethod
    def _all_reduce_updates(params, updates, group, opt):
        """The default exchange: one all-reduce of a flat bf16 buffer where each rank filled its own slices."""
        mine = list(updates)
        flat = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=torch.bfloat16)
        views = [v.view_as(p) for v, p in zip(flat.split([p.numel() for p in params]), params)]
        if mine:
            torch._foreach_copy_([views[i] for i in mine], [updates[i] for i in mine])
        dist.all_reduce(flat)  # each slice is nonzero on exactly one rank
        torch._foreach_add_(params, views, alpha=-group["lr"])  # bf16 update, added in fp32

    def _my_stacks(self, params):
        """This rank's share of every shape group (same (min dim, max dim), in parameter order) as lists of
        parameter indices; a matrix without a gradient is left out."""
        shape_groups = {}
        for i, p in enumerate(params):
            shape_groups.setdefault((min(p.shape), max(p.shape)), []).append(i)
        stacks = []
        for members in shape_groups.values():
            mine = [i for j, i in enumerate(members) if j % self.world_size == self.rank and params[i].grad is not None]
            if mine:
                stacks.append(mine)
        return stacks

    def _orthogonalised_updates(self, group, params, stacks):
        """{index: bf16 update} for this rank's matrices: Nesterov momentum, then one Newton-Schulz call per stack."""
        mine = [i for stack in stacks for i in stack]
        if not mine:
            return {}
        m = group["momentum"]
        grads = [params[i].grad for i in mine]
        bufs = []
        for i in mine:
            state = self.state[params[i]]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(params[i].grad)
            bufs.append(state["momentum_buffer"])
        torch._foreach_mul_(bufs, m)
        torch._foreach_add_(bufs, grads)  # buf = m*buf + g
        nesterov = dict(zip(mine, torch._foreach_add(grads, bufs, alpha=m)))  # g' = g + m*buf
        updates = {}
        for stack in stacks:
            transposed = [params[i].size(0) > params[i].size(1) for i in stack]  # work on the wide orientation
            G = torch.stack([nesterov[i].mT if t else nesterov[i] for i, t in zip(stack, transposed)])  # (n, r, c)
            for t in self._stage("before_orthogonalise"):
                G = t(G, [params[i] for i in stack], transposed, group, self)
            X = self.newton_schulz(G, group["backend_steps"])  # (n, r, c) bf16: NS5 or a transform's orthogonalise
            for t in self._stage("after_orthogonalise"):
                X = t(X, [params[i] for i in stack], transposed, group, self)
            X = (X * self._scale(params, stack)).bfloat16()  # the product in fp32, rounded once, as x * a float
            updates.update((i, x.mT if t else x) for i, x, t in zip(stack, X.unbind(0), transposed))
        return updates

    def _scale(self, params, stack):
        """max(1, rows/cols)^0.5 of each matrix of a stack, (n, 1, 1) fp32 on its device (made once per layout)."""
        key = tuple(params[i].shape for i in stack)
        if key not in self._scales:
            scales = [max(1.0, params[i].size(0) / params[i].size(1)) ** 0.5 for i in stack]
            self._scales[key] = torch.tensor(scales, device=params[stack[0]].device).view(-1, 1, 1)
        return self._scales[key]


def build_muon_adam_optimizers(model, h, ctx):
    """[Adam (embedding, head, everything else), Muon (CastedLinear matrices except the head)]."""
    head = getattr(model, "lm_head", None)
    head_params = [head.weight] if head is not None else []
    embed_params = [model.tok_emb.weight]
    claimed = {id(p) for p in embed_params + head_params}
    matrix_params = []
    for m in model.modules():  # a "group" tag (tag_param) overrides the rule: CastedLinear matrices go to Muon
        if isinstance(m, CastedLinear) and m is not head and id(m.weight) not in claimed:
            if param_tag(None, "group", m.weight) in (None, "muon"):
                matrix_params.append(m.weight)
                claimed.add(id(m.weight))
    for p in model.parameters():
        if param_tag(None, "group", p) == "muon" and id(p) not in claimed and p.ndim == 2:
            matrix_params.append(p)
            claimed.add(id(p))
    scalar_params = [p for p in model.parameters() if id(p) not in claimed]  # vectors, control tensors, skips

    embed_lr = h.tied_embed_lr if head is None else h.embed_lr
    adam_groups = [{"params": embed_params, "lr": embed_lr, "base_lr": embed_lr, "name": "embed"}]
    if head_params:
        adam_groups.append({"params": head_params, "lr": h.head_lr, "base_lr": h.head_lr, "name": "head"})
    if scalar_params:
        adam_groups.append({"params": scalar_params, "lr": h.scalar_lr, "base_lr": h.scalar_lr, "name": "scalar"})
    adam = torch.optim.Adam(
        adam_groups, betas=(h.beta1, h.beta2), eps=h.adam_eps, weight_decay=0.0, fused=ctx.device.type == "cuda"
    )
    muon = Muon(matrix_params, lr=h.matrix_lr, momentum=h.muon_momentum, backend_steps=h.muon_backend_steps,
                ctx=ctx, compile_ns=compile_enabled(h, ctx.device), h=h, adam=adam)
    for g in muon.param_groups:
        g["base_lr"] = h.matrix_lr
        g["base_momentum"] = h.muon_momentum  # the schedule warms momentum up towards this
    log0(f"tie_embeddings:{head is None} embed_lr:{embed_lr} head_lr:{h.head_lr if head_params else 0.0} "
         f"matrix_lr:{h.matrix_lr} scalar_lr:{h.scalar_lr}")
    return [adam, muon]


# ==================================================================================================
# plugins/flat_allreduce: gradient averaging over ranks, one flat all-reduce per dtype after the backward
# ==================================================================================================



def all_reduce_grads(params, ctx):
    """Average gradients over ranks with one all-reduce per dtype after the whole backward.

    Not DDP: DDP's bucketed all-reduces overlap the backward but cut the compiled graph into pieces, and a rank
    stepped slower that way at the eight-GPU shape (bench/dist_step.py, bench/RESULTS.md session 6).
    """
    by_dtype = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat /= ctx.world_size
        torch._foreach_copy_(grads, [f.view_as(g) for f, g in zip(flat.split([g.numel() for g in grads]), grads)])


# ==================================================================================================
# plugins/warmdown_schedule: constant LR, then a linear warmdown to zero timed by the wall clock;
# linear Muon momentum warmup
# ==================================================================================================



def warmdown_lr_multiplier(step, elapsed_ms, h):
    """1, then falling linearly to 0 over the last WARMDOWN_ITERS steps.

    With a wall-clock cap the remaining steps are estimated from the mean step time so far, so the
    decay ends when the cap is reached whatever the hardware speed.
    """
    if h.warmdown_iters <= 0:
        return 1.0
    if h.max_wallclock_seconds <= 0:
        start = max(h.iterations - h.warmdown_iters, 0)
        return max((h.iterations - step) / h.warmdown_iters, 0.0) if start <= step < h.iterations else 1.0
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = h.warmdown_iters * step_ms
    remaining_ms = max(1000.0 * h.max_wallclock_seconds - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


def apply_warmdown_schedule(optimizers, step, elapsed_ms, h):
    """Set lr = base_lr * multiplier for every group, and the momentum of groups with base_momentum."""
    mul = warmdown_lr_multiplier(step, elapsed_ms, h)
    steps = h.muon_momentum_warmup_steps
    frac = min(step / steps, 1.0) if steps > 0 else 1.0
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * mul
            if "base_momentum" in group:
                group["momentum"] = (1 - frac) * h.muon_momentum_warmup_start + frac * group["base_momentum"]
    return mul


# ==================================================================================================
# plugins/int8_quant: export quantizer. Per-row int8 for large float matrices (clip each row at the
# 99.99984th percentile of |w|, fp16 scale = clip/127), per-tensor int8 for other large float tensors,
# small float tensors kept (control tensors fp32, the rest fp16), non-float tensors passed through.
# ==================================================================================================



INT8_LABEL = "int8"
INT8_KEEP_FLOAT_MAX_NUMEL = 65_536  # tensors this small stay in float
INT8_CLIP_Q = 99.99984 / 100.0
INT8_QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs
INT8_REFERENCE_MIN_SCALE = 1.0 / 127.0


INT8_FORMAT = "int8_per_row_v1"  # written into every artifact; another format is refused when read back


def int8_abs_quantile(x):
    """Per-row INT8_CLIP_Q quantile of |x| for x (rows, cols) fp32 -> (rows,), linear interpolation."""
    x = x.abs()
    if x.size(1) <= INT8_QUANTILE_MAX_NUMEL:  # torch.quantile on blocks of rows under its size limit
        rows = max(1, INT8_QUANTILE_MAX_NUMEL // x.size(1))
        return torch.cat([torch.quantile(block, INT8_CLIP_Q, dim=1) for block in x.split(rows)])
    rank = INT8_CLIP_Q * (x.size(1) - 1)  # same interpolation, by order statistics
    lo = int(math.floor(rank))
    hi = min(lo + 1, x.size(1) - 1)
    v_lo, v_hi = torch.kthvalue(x, lo + 1, dim=1).values, torch.kthvalue(x, hi + 1, dim=1).values
    return torch.lerp(v_lo, v_hi, rank - lo)


def int8_quantize_tensor(t, min_scale=INT8_REFERENCE_MIN_SCALE):
    """float tensor -> (int8 values in [-127, 127], scale): per row (fp16 scales) for matrices, else one fp32 scale.

    Row scales are floored at min_scale. The reference floors them at 1/127: a row whose clip is below 1.0
    is stored with step 1/127, coarser than its range allows, which compresses well (few distinct values)
    and costs accuracy while weights are small (INT8_MIN_SCALE=0: every row uses its own clip/127).
    """
    t32 = t.float()
    if t32.ndim == 2:
        clip = int8_abs_quantile(t32)  # (rows,)
        scale = (clip / 127.0).clamp_min(max(min_scale, 1e-8))  # 1e-8: an all-zero row stays finite
        q = torch.round(torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None]) / scale[:, None])
        return q.clamp(-127, 127).to(torch.int8).contiguous(), scale.to(torch.float16).contiguous()
    clip = float(int8_abs_quantile(t32.reshape(1, -1))[0])
    scale = torch.tensor(clip / 127.0 if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.round(t32.clamp(-clip, clip) / scale)
    return q.clamp(-127, 127).to(torch.int8).contiguous(), scale


def quantize_state_dict_int8(state_dict, h=None):
    """state dict -> (object to torch.save, stats with param_count, payload_bytes, baseline_tensor_bytes)."""
    min_scale = h.int8_min_scale if h is not None else INT8_REFERENCE_MIN_SCALE
    quantized, scales, dtypes, passthrough, passthrough_dtypes = {}, {}, {}, {}, {}
    stats = {"param_count": 0, "payload_bytes": 0, "baseline_tensor_bytes": 0, "num_quantized": 0}
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        stats["param_count"] += t.numel()
        stats["baseline_tensor_bytes"] += t.numel() * t.element_size()
        quant = param_tag(name, "quant")  # a plugin's tag_param(p, quant=...) wins over the size rule
        if not t.is_floating_point():
            passthrough[name] = t
        elif quant in ("fp32", "fp16") or (quant is None and t.numel() <= INT8_KEEP_FLOAT_MAX_NUMEL):
            if quant == "fp32" or (quant is None and is_control_tensor(name)):
                passthrough[name] = t.float()  # control tensors: exact fp32
            else:
                passthrough[name] = t.to(torch.float16)
            passthrough_dtypes[name] = str(t.dtype).removeprefix("torch.")
        else:
            quantized[name], scales[name] = int8_quantize_tensor(t, min_scale)
            dtypes[name] = str(t.dtype).removeprefix("torch.")
            stats["num_quantized"] += 1
            stats["payload_bytes"] += quantized[name].numel() + scales[name].numel() * scales[name].element_size()
            continue
        stats["payload_bytes"] += passthrough[name].numel() * passthrough[name].element_size()
    obj = {
        "__quant_format__": INT8_FORMAT,
        "quantized": quantized,
        "scales": scales,
        "dtypes": dtypes,
        "passthrough": passthrough,
        "passthrough_dtypes": passthrough_dtypes,
    }
    return obj, stats


def quantize_model_int8(model, state, h, ctx, calibration):
    """The quantizer slot's contract: the state dict alone decides the int8 artifact (no calibration read)."""
    return quantize_state_dict_int8(state, h)


def dequantize_state_dict_int8(obj):
    """Inverse of quantize_state_dict_int8: every tensor back in its original dtype (CPU). An artifact of
    another format (or none) is one line and exit code 2, not a KeyError or silently wrong weights."""
    found = obj.get("__quant_format__") if isinstance(obj, dict) else type(obj).__name__
    if found != INT8_FORMAT:
        raise RunInputError(f"artifact format {found!r}: this program reads {INT8_FORMAT!r} artifacts")
    out = {}
    for name, q in obj["quantized"].items():
        s = obj["scales"][name].float()
        if s.ndim > 0:
            s = s.view(q.size(0), *([1] * (q.ndim - 1)))  # per row
        out[name] = (q.float() * s).to(getattr(torch, obj["dtypes"][name])).contiguous()
    for name, t in obj["passthrough"].items():
        dtype = obj["passthrough_dtypes"].get(name)
        out[name] = t.to(getattr(torch, dtype)).contiguous() if dtype else t
    return out


# ==================================================================================================
# plugins/zlib_compress: artifact compression with zlib at level 9
# ==================================================================================================
import zlib

ZLIB_LABEL = "zlib"


def zlib_compress(raw):
    return zlib.compress(raw, level=9)


def zlib_decompress(blob):
    return zlib.decompress(blob)


# ==================================================================================================
# plugins/token_stream_loader: one sequential stream over the sorted train shards, wrapping forever,
# no shuffling; every call takes one contiguous chunk and rank r trains on span r of it
# ==================================================================================================




class TokenStreamLoader:
    """The reference's loader: every rank reads the same stream and keeps its own span of each chunk."""

    def __init__(self, h, ctx):
        self.pattern, self.files = h.train_files, shard_files(h.train_files)
        # Every id is checked as its shard loads (one max per shard, a tiny share of a run's time), rather than
        # a device-side assert in the middle of training.
        self.vocab_size = h.vocab_size
        self.rank, self.world_size, self.device = ctx.rank, ctx.world_size, ctx.device
        self.file_idx, self.pos = 0, 0
        self.tokens = load_data_shard(self.files[0], self.vocab_size)

    def _take(self, n):
        """The next n tokens of the stream (uint16, CPU), moving on to the next shard as needed."""
        chunks, empty_loads = [], 0
        while n > 0:
            if self.pos >= self.tokens.numel():
                empty_loads += 1
                if empty_loads > len(self.files):  # a whole pass over the shards gave nothing
                    raise RunInputError(f"{self.pattern}: every train shard is empty, expected tokens")
                self.file_idx = (self.file_idx + 1) % len(self.files)
                self.tokens, self.pos = load_data_shard(self.files[self.file_idx], self.vocab_size), 0
                continue
            empty_loads = 0
            k = min(n, self.tokens.numel() - self.pos)
            chunks.append(self.tokens[self.pos : self.pos + k])
            self.pos, n = self.pos + k, n - k
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        """This rank's (x, y), int64 (local_tokens // seq_len, seq_len) on device; y is x shifted by one."""
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        span = local_tokens + 1  # one extra token so that the last input has a target
        chunk = self._take(self.world_size * span)
        local = chunk[self.rank * span : (self.rank + 1) * span].to(torch.int64)
        if self.device.type == "cuda":
            local = local.pin_memory()
        local = local.to(self.device, non_blocking=True)
        return local[:-1].view(-1, seq_len), local[1:].view(-1, seq_len)


# ==================================================================================================
# plugins/train_calibration: the default calibration source. A quantizer that calibrates (GPTQ's Hessians)
# reads training micro-batches from a fresh TrainLoader (data_loader slot), which reads only h.train_files
# ==================================================================================================



def train_calibration_batches(model, h, ctx, count):
    """`count` training micro-batches: this rank's x, int64 (b, TRAIN_SEQ_LEN) on ctx.device, as training reads them
    (the loader starts again at the first shard); validation data is never a calibration input."""
    loader = TrainLoader(h, ctx)
    for _ in range(count):
        yield loader.next_batch(h.train_batch_tokens, h.train_seq_len, ctx.grad_accum_steps)[0]


# ==================================================================================================
# plugins/plain_eval: the default evaluation windows (non-overlapping TRAIN_SEQ_LEN windows, the
# reference's) and the default scorer (every window of the plan scored once, no adaptation), with the
# helpers other window plans and scorers reuse (sliding_windows, ensure_positions): those plugins require it
# ==================================================================================================




def sliding_windows(num_targets, window, stride):
    """[(start, first_scored)] over targets 1 .. num_targets: the first window scores all its targets, each
    later one starts stride tokens on and scores what its predecessor did not reach. The last window ends
    exactly at the stream's end and scores only what is left, so no target is scored twice (the duplicate
    tail fixed in the records on 2026-04-01). stride == window gives the plain non-overlapping windows."""
    window = min(window, num_targets)
    spans, end = [(0, 0)], window
    while end < num_targets:
        start = min(end + stride, num_targets) - window
        spans.append((start, end))
        end = start + window
    return spans


def plain_windows(val_tokens, h, ctx):
    """Non-overlapping TRAIN_SEQ_LEN windows, split across ranks by sequence as the reference splits them."""
    seq_len = h.train_seq_len
    # VAL_BATCH_SIZE counts tokens over all ranks and micro-batches, as TRAIN_BATCH_TOKENS does, so a
    # forward pass takes 64 windows at the defaults on 1 to 8 GPUs (the reference's split; 512 windows at
    # once reserved more memory for no gain, bench/RESULTS.md).
    batch_seqs = h.val_batch_size // (ctx.world_size * ctx.grad_accum_steps * seq_len)
    if batch_seqs < 1:
        raise RunInputError(
            f"VAL_BATCH_SIZE={h.val_batch_size} is less than one TRAIN_SEQ_LEN={seq_len} window per rank and "
            f"micro-batch ({ctx.world_size} x {ctx.grad_accum_steps})"
        )
    spans = sliding_windows(val_tokens.numel() - 1, seq_len, seq_len)
    return EvalWindows(min(seq_len, val_tokens.numel() - 1), spans, batch_seqs, pad=False)


def ensure_positions(model, seq_len):
    """Grow every position table of a model to seq_len positions (each position_encoding module's
    grow_positions), before a compiled forward sees a longer sequence (an evaluation longer than training):
    growing them inside a compiled graph is not traceable."""
    for module in getattr(model, "_orig_mod", model).modules():
        if hasattr(module, "grow_positions"):
            module.grow_positions(seq_len)


def score_plain_windows(model, val_tokens, h, ctx, final=False):
    """Scores of this rank's share of the planned windows (eval_windows); never adapts the model."""
    plan = eval_windows(val_tokens, h, ctx)
    ensure_positions(model, plan.window)
    parts = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), bf16_autocast(ctx.device):
        for x, y, batch in window_batches(plan, rank_share(plan.spans, ctx), val_tokens, ctx.device):
            nll = model(x, y, reduction="none").float()
            parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device))
    model.train(was_training)
    return collect_scores(parts, ctx.device)


# ==================================================================================================
# wiring: generated by golfc
# ==================================================================================================
# Each slot global is bound to the symbol of the plugin that fills it (golfc/slots.py).
attention_kernel = sdpa_attention  # plugins/sdpa_attention
QKV_PRE_ROPE = []  # slot qkv_pre_rope: none
VALUE_HOOKS = []  # slot value_hook: none
PositionEncoding = rope_position_encoding  # plugins/rope
QK_TRANSFORMS = []  # slot qk_transform: none
ATTENTION_POST = []  # slot attention_post: none
MLP = ReluSquaredMLP  # plugins/relu2_mlp
EMBEDDING_PRE_NORM = []  # slot embedding_pre_norm: none
EMBEDDING_EXTRAS = []  # slot embedding_extras: none
Block = UNetBlock  # plugins/unet_blocks
block_norm = unet_block_norm  # plugins/unet_blocks
layer_schedule = unet_layer_schedule  # plugins/unet_blocks
SkipMixer = UNetSkips  # plugins/unet_blocks
loss_from_hidden = None  # slot loss: none
build_optimizers = build_muon_adam_optimizers  # plugins/muon
MUON_TRANSFORMS = []  # slot muon_transform: none
average_gradients = all_reduce_grads  # plugins/flat_allreduce
apply_schedule = apply_warmdown_schedule  # plugins/warmdown_schedule
RUN_EVENTS = []  # slot run_events: none
WeightAverager = None  # slot weight_averaging: none
train_quant_hook = None  # slot train_quantization: none
LinearWeightTransform = None  # slot weight_transform: none
calibration_source = train_calibration_batches  # plugins/train_calibration
quantize_model = quantize_model_int8  # plugins/int8_quant
dequantize_state_dict = dequantize_state_dict_int8  # plugins/int8_quant
QUANT_LABEL = INT8_LABEL  # plugins/int8_quant
QUANT_STAGES = []  # slot quant_stages: none
budget_fitter = None  # slot budget_fitter: none
compress_bytes = zlib_compress  # plugins/zlib_compress
decompress_bytes = zlib_decompress  # plugins/zlib_compress
COMPRESS_LABEL = ZLIB_LABEL  # plugins/zlib_compress
TrainLoader = TokenStreamLoader  # plugins/token_stream_loader
eval_windows = plain_windows  # plugins/plain_eval
score_validation = score_plain_windows  # plugins/plain_eval


# ==================================================================================================
# core/probe: the verifier's probe mode (GOLFC_PROBE=tokens.npy GOLFC_PROBE_OUT=out.npz). The configured
# evaluation (score_validation, final=True, this run's batch size and world size) scores given token streams
# instead of the validation tokens and writes the NLL of every scored position; golfc verify compares them.
# Off unless GOLFC_PROBE is set: nothing here runs in a training or scoring run.
# ==================================================================================================
import json





# The probe's settings, read from the environment (a verifier's protocol, not hyperparameters of the run):
#   GOLFC_PROBE=tokens.npy         int array (N,) or (K, N): K streams of N tokens, each scored on its own
#   GOLFC_PROBE_OUT=out.npz        where rank 0 writes the results (default probe.npz)
#   GOLFC_PROBE_ARTIFACT=FILE      score with this artifact's weights (else the seeded initial weights)
#   GOLFC_PROBE_TRAIN_STEPS=N      first train N steps on training data and export the artifact, then load it
#   GOLFC_PROBE_ROWS=P,P,...       target positions whose full log-probability rows (V,) are written too
PROBE_TAP = {"rows": None, "logp": None, "found": None}


def probe_distribution(logp):
    """What a scorer whose scored distribution is not softmax(GPT.logits(...)) (a mixture, a cache) calls with
    its final log-probabilities (B, T, V), unnormalised if that is what it scores, just before span_scores: the
    probe's rows are then what was scored. Does nothing outside a probe that asked for rows."""
    if PROBE_TAP["rows"] is not None:
        PROBE_TAP["logp"] = logp.detach().float()


def probe_tapped_logits(self, hidden):
    """GPT.logits while a probe records rows: the model's own distribution is the scored one unless the scorer
    hands another to probe_distribution."""
    logits = PROBE_TAP["logits_fn"](self, hidden)
    PROBE_TAP["logp"] = F.log_softmax(logits.detach().float(), dim=-1)
    return logits


def probe_rows(positions):
    """While a probe records rows: each requested target's row of the last distribution, for a scorer whose forward
    scored target positions[b, t] (-1: none) in row b, column t. span_scores is tapped; other scorers call this."""
    logp, wanted = PROBE_TAP["logp"], PROBE_TAP["rows"] or ()
    for p in wanted if logp is not None and logp.shape[:2] == positions.shape else ():
        for b, t in (positions == p).nonzero()[:1].tolist():
            PROBE_TAP["found"][p] = logp[b, t].cpu()


def probe_tapped_span_scores(plan, batch, nll, nbytes, device, seen=-1):
    """span_scores while a probe records rows: real row i scores targets first_scored + 1 .. start + window."""
    columns, positions = torch.arange(1, plan.window + 1, device=nll.device), torch.full_like(nll, -1, dtype=torch.int64)
    for i, (start, first_scored) in enumerate(batch):
        positions[i] = torch.where(start + columns > first_scored, start + columns, -1)
    probe_rows(positions)
    return PROBE_TAP["span_scores_fn"](plan, batch, nll, nbytes, device, seen)


def probe_streams(path, vocab_size):
    if not os.path.isfile(path):
        raise RunInputError(f"GOLFC_PROBE={path}: no such file, expected a .npy array of token ids")
    streams = np.load(path)
    streams = streams[None] if streams.ndim == 1 else streams
    if streams.ndim != 2 or streams.shape[1] < 2 or streams.dtype.kind not in "iu":
        raise RunInputError(f"GOLFC_PROBE={path}: {streams.dtype} {streams.shape}, expected integer (N,) or (K, N), N >= 2")
    if streams.min() < 0 or streams.max() >= vocab_size:
        raise RunInputError(f"GOLFC_PROBE={path}: token ids outside 0..{vocab_size - 1}")
    return torch.from_numpy(streams.astype(np.int32))


def probe_eval(run):
    """Score every probe stream with the configured evaluation from the same weights and seed; rank 0 writes
    nll / rank (K, N) (NaN / -1 where unscored; position p is the target index), scored (K, N) counts, rows
    (K, R, V) log-probabilities at row_positions (NaN where no row was recorded), the plan of stream 0
    (window, spans, batch_seqs), settings (JSON) and whether the program claims document isolation."""
    h, ctx, env = run.h, run.ctx, os.environ
    streams = probe_streams(env["GOLFC_PROBE"], h.vocab_size)
    ctx.luts = build_bpb_luts(load_tokenizer(h), h.vocab_size, ctx.device)
    steps, artifact = int(env.get("GOLFC_PROBE_TRAIN_STEPS", "0") or 0), env.get("GOLFC_PROBE_ARTIFACT", "")
    if steps > 0:  # briefly trained weights, through the real export: the artifact is what gets probed
        prepare_training(run)
        loader = TrainLoader(h, ctx)
        for step in range(steps):
            train_step(run, step, 0.0, loader)
        artifact = export_artifact(run.base_model, h, ctx)
    if artifact:
        quant_obj = read_artifact(artifact, "GOLFC_PROBE_ARTIFACT")
        run.base_model.load_state_dict(dequantize_state_dict(quant_obj), strict=True)
    rows = [int(p) for p in env.get("GOLFC_PROBE_ROWS", "").split(",") if p.strip()]
    model = run.base_model if rows else run.model  # rows come from the eager model: a compiled graph cannot be tapped
    if rows:
        PROBE_TAP.update(rows=rows, logits_fn=GPT.logits, span_scores_fn=span_scores)
        GPT.logits, globals()["span_scores"] = probe_tapped_logits, probe_tapped_span_scores
    saved = {k: v.detach().clone() for k, v in run.base_model.state_dict().items()}
    K, N = streams.shape
    nll, rank = np.full((K, N), np.nan, np.float32), np.full((K, N), -1, np.int64)
    scored, found = np.zeros((K, N), np.int64), np.full((K, len(rows), h.vocab_size), np.nan, np.float32)
    try:
        for k in range(K):
            run.base_model.load_state_dict(saved)
            seed_everything(h.seed)
            PROBE_TAP.update(logp=None, found={})
            scores = score_validation(model, streams[k], h, ctx, True)
            mine = (scores.positions.cpu().numpy(), scores.nll.float().cpu().numpy(),
                    {p: r.numpy() for p, r in PROBE_TAP["found"].items()})
            shares = [mine] * ctx.world_size  # every rank's share once gathered
            if ctx.distributed:
                dist.all_gather_object(shares, mine)
            for r, (positions, values, rows_found) in enumerate(shares):
                np.add.at(scored[k], positions, 1)
                nll[k, positions], rank[k, positions] = values, r
                for i, p in enumerate(rows):
                    if p in rows_found:
                        found[k, i] = rows_found[p]
    finally:
        if rows:
            GPT.logits, globals()["span_scores"] = PROBE_TAP["logits_fn"], PROBE_TAP["span_scores_fn"]
            PROBE_TAP["rows"] = None
    plan = eval_windows(streams[0], h, ctx)
    settings = {k: v for k, v in vars(type(h)).items() if not k.startswith("_") and not callable(v)}
    if ctx.is_master:
        out = env.get("GOLFC_PROBE_OUT", "") or "probe.npz"
        np.savez(out, nll=nll, rank=rank, scored=scored, rows=found, row_positions=np.array(rows, np.int64),
                 window=plan.window, spans=np.array(plan.spans, np.int64).reshape(-1, 2), batch_seqs=plan.batch_seqs,
                 world_size=ctx.world_size, settings=json.dumps(settings, default=str),
                 document_isolated=bool(globals().get("DOCUMENT_ISOLATED", False)))
        log0(f"probe: {K} stream(s) of {N} tokens scored, {len(rows)} row(s) requested -> {out}")


# ==================================================================================================
# core/train: the run's phases — setup, optimizers, compile warmup and reset, timed training, export,
# roundtrip evaluation — and main(), which calls them in order
# ==================================================================================================





def program_source():
    """The readable source of this program: the self-extracting wrapper hands it over as __golfc_source__."""
    source = globals().get("__golfc_source__")
    if source is None:
        with open(__file__, encoding="utf-8") as f:
            source = f.read()
    return source


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def evaluate(model, val_tokens, h, ctx, final=False):
    """(val_loss in nats, val_bpb) over the whole validation stream; sums in fp64, reduced over ranks. final=True
    only for the scored artifact's evaluation: the one an adapting scorer (TTT, SLOT) may adapt in, and the one whose
    score ledger (core/data) is logged (adapted: scored after an update; violations: seen >= position)."""
    s = ledger_scores(model, val_tokens, h, ctx, final)
    totals = torch.stack([t.to(torch.float64).sum() for t in (s.nll, torch.ones_like(s.nll), s.nbytes,
                          s.updates > 0, s.seen >= 0, s.seen >= s.positions)]).to(ctx.device)
    if ctx.distributed:
        dist.all_reduce(totals)
    nll_sum, count, nbytes, adapted, declared, violations = totals.tolist()
    if int(count) != val_tokens.numel() - 1:
        raise RuntimeError(f"score_validation scored {int(count)} positions, expected {val_tokens.numel() - 1}")
    if final:  # golfc verify reads it: a violation is a score fed by an update computed from its own or a later token
        log0(f"score_ledger scored:{count:.0f} adapted:{adapted:.0f} declared:{declared:.0f} violations:{violations:.0f}")
    val_loss = nll_sum / count
    return val_loss, val_loss / math.log(2.0) * (count / nbytes)


def log_header(h):
    """The log file starts with the full source, then the Python and PyTorch versions and nvidia-smi."""
    log0(program_source(), console=False)
    log0("=" * 100, console=False)
    log0(f"Running Python {sys.version}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    try:
        smi = subprocess.run(["nvidia-smi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        log0(smi.stdout, console=False)
    except OSError:
        log0("nvidia-smi: not available", console=False)
    log0("=" * 100, console=False)


# --------------------------------------------------------------------------------------------------
# Export: calibration data for the quantizer, the quantizer, the compressor, the 16,000,000-byte budget
# --------------------------------------------------------------------------------------------------
ARTIFACT_BUDGET_BYTES = 16_000_000  # code + compressed model, decimal bytes (the challenge's cap)


class Calibration:
    """Calibration data a quantizer may draw on (GPTQ's Hessians): batches(count) yields the calibration_source slot's
    token batches (read only if a quantizer asks), recording the training clock of the last read and of finished():
    training stopped GPTQ_RESERVE_SECONDS early so that this fits inside MAX_WALLCLOCK_SECONDS."""

    def __init__(self, model, h, ctx, train_ms):
        self.model, self.h, self.ctx = model, h, ctx
        self.train_ms, self.t0 = train_ms, time.perf_counter()  # training clock at its stop; export start
        self.source = calibration_source.__name__.removesuffix("_batches")  # train_calibration, ar_selfgen, ...
        self.count, self.last_read_ms, self.done_ms = 0, None, None

    def clock_ms(self):
        """The training clock now: training time plus the time since export began (the last eval excluded)."""
        return self.train_ms + 1000.0 * (time.perf_counter() - self.t0)

    def batches(self, count):
        """Up to `count` token batches, int64 (b, T) on ctx.device."""
        for x in calibration_source(self.model, self.h, self.ctx, count):
            self.count += 1
            self.last_read_ms = self.clock_ms()
            yield x

    def finished(self):
        """A quantizer calls this when it no longer needs calibration data (Hessians all collected)."""
        self.done_ms = self.clock_ms()

    def log(self):
        if self.count == 0:
            return
        cap_ms = 1000.0 * self.h.max_wallclock_seconds
        done = self.done_ms if self.done_ms is not None else self.last_read_ms
        log0(f"calibration:{self.source} batches:{self.count} seconds:{(done - self.train_ms) / 1000.0:.2f} "
             f"last_data_read_ms:{self.last_read_ms:.0f} done_ms:{done:.0f} train_ms:{self.train_ms:.0f}")
        if cap_ms > 0 and done > cap_ms:
            log0(f"calibration:WARNING done at {done:.0f}ms, after MAX_WALLCLOCK_SECONDS={self.h.max_wallclock_seconds:g}: "
                 "raise GPTQ_RESERVE_SECONDS")


def serialize_artifact(quant_obj):
    """The quantizer's object as bytes (torch.save), before compression."""
    buf = io.BytesIO()
    torch.save(quant_obj, buf)
    return buf.getvalue()


def export_artifact(model, h, ctx, train_ms=0.0):
    """Write final_model.pt (the unquantized weights: kept whatever happens next) and the scored artifact
    final_model.<quant>.ptz; log the sizes. Over 16,000,000 bytes with the code, a budget_fitter (if any) shrinks it,
    else the run stops with both numbers (exit 2), the artifact and final_model.pt left on disk."""
    code_bytes = os.path.getsize(__file__)  # the file being run (the shipped wrapper when wrapped)
    state = model.state_dict()
    if ctx.is_master:
        torch.save(state, "final_model.pt")
        model_bytes = os.path.getsize("final_model.pt")
        log0(f"Serialized model: {model_bytes} bytes")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size: {model_bytes + code_bytes} bytes")
    calibration = Calibration(model, h, ctx, train_ms)
    # every rank: a quantizer may use collectives (GPTQ sums its Hessians over ranks)
    quant_obj, stats = quantize_model(model, state, h, ctx, calibration)
    calibration.log()
    raw = serialize_artifact(quant_obj)
    label = f"{QUANT_LABEL}+{COMPRESS_LABEL}"
    artifact = f"final_model.{QUANT_LABEL}.ptz"
    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    if ctx.is_master:
        blob = compress_bytes(raw)
        if len(blob) + code_bytes > ARTIFACT_BUDGET_BYTES and budget_fitter is not None:
            log0(f"fit_budget: {len(blob) + code_bytes} bytes > {ARTIFACT_BUDGET_BYTES}; fitting")
            quant_obj = budget_fitter(quant_obj, lambda obj: len(compress_bytes(serialize_artifact(obj))) + code_bytes, h)
            raw = serialize_artifact(quant_obj)
            blob = compress_bytes(raw)
        with open(artifact, "wb") as f:
            f.write(blob)
        artifact_bytes = os.path.getsize(artifact)
        ratio = stats["baseline_tensor_bytes"] / max(stats["payload_bytes"], 1)
        log0(f"Serialized model {label}: {artifact_bytes} bytes "
             f"(payload:{stats['payload_bytes']} raw_torch:{len(raw)} payload_ratio:{ratio:.2f}x)")
        log0(f"Total submission size {label}: {artifact_bytes + code_bytes} bytes")
        total.fill_(artifact_bytes + code_bytes)
    if ctx.distributed:
        dist.broadcast(total, src=0)  # every rank stops, or none
        dist.barrier()  # the artifact is on disk before any rank reads it back
    if total.item() > ARTIFACT_BUDGET_BYTES:
        raise RunInputError(f"{artifact}: {int(total.item()) - code_bytes} model bytes + {code_bytes} code bytes = "
                            f"{int(total.item())} > {ARTIFACT_BUDGET_BYTES}; final_model.pt keeps the unquantized weights "
                            "(add fit_budget, or a smaller model or quantizer)")
    return artifact


# --------------------------------------------------------------------------------------------------
# The run's phases: setup, validation data, model, optimizers, compile warmup, timed training, export,
# roundtrip evaluation; main() calls them in order, and EVAL_ONLY=ARTIFACT runs the set-up phases and the
# roundtrip evaluation alone (an eval-only rerun of a saved artifact).
# --------------------------------------------------------------------------------------------------
class Run:
    """What the training phases share: settings, run context, the model (plain and compiled) and, after
    prepare_training, its optimizers and trainable parameters. Not the validation tokens: they are handed only to
    the phases that evaluate, so no training step can reach them (and an auditor's data-flow reading sees that)."""

    def __init__(self, h, ctx, base_model, model):
        self.h, self.ctx = h, ctx
        self.base_model, self.model = base_model, model  # model: torch.compile(base_model) on CUDA
        self.optimizers, self.params = [], []
        self.events, self.phase_plan, self.averager = [], [], None  # run_events objects, [(fraction, phase)]
        self.train_ms = 0.0  # the training clock when train() stopped


def setup(h):
    """Distributed set-up, seeds, logging, shard checks: the run context."""
    ctx = init_distributed(h)
    seed_everything(h.seed)
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    h.train_files = os.path.join(h.data_path, "fineweb_train_*.bin")
    h.val_files = os.path.join(h.data_path, "fineweb_val_*.bin")
    for pattern in (h.train_files, h.val_files):
        check_shards(pattern)  # fail early on a missing, corrupt or empty shard, naming it
    setup_logging(ctx, h.run_id or str(uuid.uuid4()))
    if ctx.is_master:
        log_header(h)
    return ctx


def load_validation(h, ctx):
    """The tokenizer's BPB tables (into ctx.luts) and the validation tokens, returned on their own."""
    micro_tokens = ctx.world_size * ctx.grad_accum_steps * h.train_seq_len
    if h.train_batch_tokens % micro_tokens != 0:
        raise RunInputError(f"TRAIN_BATCH_TOKENS={h.train_batch_tokens} must be a multiple of 8 * TRAIN_SEQ_LEN={micro_tokens}")
    sp = load_tokenizer(h)
    ctx.luts = build_bpb_luts(sp, h.vocab_size, ctx.device)
    val_tokens = load_validation_tokens(h.val_files, h.train_seq_len, h.vocab_size)
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={h.tokenizer_path}")
    dataset = os.path.basename(os.path.normpath(h.data_path))
    log0(f"train_loader:dataset:{dataset} train_shards:{len(shard_files(h.train_files))}")
    log0(f"val_loader:shards pattern={h.val_files} tokens:{val_tokens.numel() - 1}")
    return val_tokens


def build_model(h, ctx):
    """The model, cast as the reference casts it, identical on every rank, and its compiled form: a Run."""
    base_model = GPT(h).to(ctx.device)
    cast_params_for_training(base_model, ctx.device)
    if ctx.distributed:  # identical seeds give identical weights; make it a guarantee
        for t in base_model.state_dict().values():
            dist.broadcast(t, src=0)
    log0(f"model_params:{sum(p.numel() for p in base_model.parameters())}")
    log0(f"world_size:{ctx.world_size} grad_accum_steps:{ctx.grad_accum_steps}")
    log0(f"attention_mode:{'gqa' if h.num_kv_heads != h.num_heads else 'mha'} "
         f"num_heads:{h.num_heads} num_kv_heads:{h.num_kv_heads}")
    compiled = compile_enabled(h, ctx.device)
    if compiled and h.compile_tuning:
        import torch._inductor.config as inductor_config

        inductor_config.coordinate_descent_tuning = True  # slower compile, sometimes faster kernels
    model = torch.compile(base_model, dynamic=False, fullgraph=True) if compiled else base_model
    run = Run(h, ctx, base_model, model)
    run.events = [cls(base_model, h, ctx) for cls in RUN_EVENTS]  # run_events slot, one object per plugin
    run.phase_plan = sorted((float(f), name) for events in run.events for name, f in events.phases.items())
    if any(not 0.0 <= f <= 1.0 for f, _ in run.phase_plan):
        raise RunInputError(f"run phases {run.phase_plan}: each needs a fraction in [0, 1]")
    return run


def prepare_training(run):
    """The optimizers (optimizer slot) and the log lines that describe the training run."""
    h = run.h
    run.optimizers = build_optimizers(run.base_model, h, run.ctx)
    run.params = [p for p in run.base_model.parameters() if p.requires_grad]
    log0(f"train_batch_tokens:{h.train_batch_tokens} train_seq_len:{h.train_seq_len} iterations:{h.iterations} "
         f"warmup_steps:{h.warmup_steps} max_wallclock_seconds:{h.max_wallclock_seconds:.3f}")
    log0(f"seed:{h.seed}")
    settings = {k: v for k, v in vars(type(h)).items() if not k.startswith("_") and not callable(v)}
    log0("hparams: " + " ".join(f"{k}={v}" for k, v in settings.items()))  # golfc's own: every effective setting
    log0(f"device:{run.ctx.device} compile:{compile_enabled(h, run.ctx.device)}")


def switch_phase(run, name, on):
    """Switch run phase `name` on or off: the model's phases (read by every forward), then each events object."""
    phases = set(run.base_model.phases)
    run.base_model.phases = tuple(sorted(phases | {name} if on else phases - {name}))
    for events in run.events:
        events.phase(run.base_model, name, on)


def train_step(run, step, elapsed_ms, loader, timed=False):
    """One optimizer step over grad_accum_steps micro-batches; returns this rank's mean loss. A timed step (not
    the compile warmup's) also updates the weight averager and fires the step events."""
    h, ctx, base_model = run.h, run.ctx, run.base_model
    lr_mul = apply_schedule(run.optimizers, step, elapsed_ms, h)
    if train_quant_hook is not None:
        train_quant_hook(base_model, step, lr_mul, h)
    loss_sum = torch.zeros((), device=ctx.device)
    weight = getattr(loader, "loss_weight", 1.0)  # data_loader slot: this rank's share of the step's tokens x world
    for _ in range(ctx.grad_accum_steps):
        x, y = loader.next_batch(h.train_batch_tokens, h.train_seq_len, ctx.grad_accum_steps)
        with bf16_autocast(ctx.device):
            loss = run.model(x, y)
        loss_sum += loss.detach()
        ((loss * weight if weight != 1.0 else loss) / ctx.grad_accum_steps).backward()
    if ctx.distributed:
        average_gradients(run.params, ctx)  # grad_average slot
    if h.grad_clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(run.params, h.grad_clip_norm)
    for opt in run.optimizers:
        opt.step()
    base_model.zero_grad(set_to_none=True)
    if timed and run.averager is not None:
        run.averager.update(base_model, step + 1, lr_mul)  # step + 1 = optimizer steps done
    for events in run.events if timed else ():
        events.step(base_model, step + 1, elapsed_ms, lr_mul)
    return loss_sum / ctx.grad_accum_steps


def compile_warmup(run):
    """WARMUP_STEPS real steps, so that nothing compiles inside the timed loop, and as many again with each run
    phase switched on in turn (the graphs the timed loop will switch to); then the phases are switched off and
    the initial weights, optimizer state and data position are restored."""
    h = run.h
    if h.warmup_steps <= 0:
        return
    initial_model = {k: v.detach().cpu().clone() for k, v in run.base_model.state_dict().items()}
    initial_optimizers = [copy.deepcopy(opt.state_dict()) for opt in run.optimizers]
    loader = TrainLoader(h, run.ctx)
    for phase in [None] + [name for _, name in run.phase_plan]:  # None: no phase yet; then cumulatively
        if phase is not None:
            switch_phase(run, phase, True)
            log0(f"warmup_phase:{phase}")
        for i in range(h.warmup_steps):
            train_step(run, 0, 0.0, loader)
            if h.warmup_steps <= 20 or (i + 1) % 10 == 0 or i + 1 == h.warmup_steps:
                log0(f"warmup_step:{i + 1}/{h.warmup_steps}")
    for _, name in reversed(run.phase_plan):
        switch_phase(run, name, False)
    run.base_model.load_state_dict(initial_model, strict=True)
    for opt, state in zip(run.optimizers, initial_optimizers):
        opt.load_state_dict(state)


def train(run, val_tokens):
    """The timed loop: the clock runs only around training steps; periodic validation outside it."""
    h, ctx, model = run.h, run.ctx, run.model
    loader = TrainLoader(h, ctx)
    run.averager = WeightAverager(run.base_model, h) if WeightAverager is not None else None
    pending = list(run.phase_plan)  # [(fraction, phase)] not yet switched on, earliest first
    # under a cap, training stops GPTQ_RESERVE_SECONDS early: the export's calibration runs inside the cap
    max_ms = 1000.0 * (h.max_wallclock_seconds - h.gptq_reserve_seconds) if h.max_wallclock_seconds > 0 else None
    # the training clock as every rank reads it (clock_ms): under a cap, the slowest rank's, so that all ranks stop
    # after the same step and set the same warmdown LR (their weights stay equal to the bit); uncapped, its own
    clock_group = host_group(ctx) if max_ms is not None else None
    train_ms, clock_ms, stop_after, step = 0.0, 0.0, None, 0
    for events in run.events:
        events.train_start(run)
    sync_device(ctx.device)
    t0 = time.perf_counter()
    while True:
        last_step = step == h.iterations or (stop_after is not None and step >= stop_after)
        if last_step or (h.val_loss_every > 0 and step % h.val_loss_every == 0):
            sync_device(ctx.device)
            train_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = evaluate(model, val_tokens, h, ctx)
            log0(f"step:{step}/{h.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{train_ms:.0f}ms step_avg:{train_ms / max(step, 1):.2f}ms")
            clock_ms = max_over_ranks(train_ms, clock_group)
            sync_device(ctx.device)
            t0 = time.perf_counter()
        if last_step:
            if stop_after is not None and step < h.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:{step}/{h.iterations}")
            break
        progress = clock_ms / max_ms if max_ms is not None else step / max(h.iterations, 1)
        while pending and progress >= pending[0][0]:  # the agreed clock: every rank switches at this step
            switch_phase(run, pending.pop(0)[1], True)
            log0(f"phase:{run.base_model.phases} step:{step} train_time:{clock_ms:.0f}ms")
        train_loss = train_step(run, step, clock_ms, loader, timed=True)
        step += 1
        # No device sync here: the host runs at most a step ahead, and a sync per step would leave the GPU
        # idle while the next step is launched. Only logging (.item()) syncs.
        clock_ms = max_over_ranks(train_ms + 1000.0 * (time.perf_counter() - t0), clock_group)
        if h.train_log_every > 0 and (step <= 10 or step % h.train_log_every == 0 or stop_after is not None):
            log0(f"step:{step}/{h.iterations} train_loss:{train_loss.item():.4f} "
                 f"train_time:{clock_ms:.0f}ms step_avg:{clock_ms / step:.2f}ms")
        if stop_after is None and max_ms is not None and clock_ms >= max_ms:
            stop_after = step
    if ctx.device.type == "cuda":
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 1024 // 1024} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 1024 // 1024} MiB")
    if run.averager is not None:
        run.averager.apply(run.base_model)
    for events in run.events:
        events.before_export(run.base_model, ctx)
    run.train_ms = train_ms  # the training clock at the stop: export's calibration continues it


def read_artifact(artifact, setting="EVAL_ONLY"):
    """The quantizer's object from a compressed artifact; a missing file (named by the `setting` that gave it) or one
    this program cannot read is one line (exit 2). dequantize_state_dict checks the object's format version."""
    if not os.path.isfile(artifact):
        raise RunInputError(f"{setting}={artifact}: no such artifact file")
    with open(artifact, "rb") as f:
        blob = f.read()
    try:
        raw = decompress_bytes(blob)
    except Exception as exc:  # zlib.error, lzma.LZMAError, zstd / brotli errors: no common base class
        raise RunInputError(f"{artifact}: not a {COMPRESS_LABEL} artifact of this program "
                            f"({type(exc).__name__}: {exc})") from None
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu")
    except Exception as exc:
        raise RunInputError(f"{artifact}: decompressed, but not a torch.save object ({type(exc).__name__})") from None


def roundtrip_eval(run, val_tokens, artifact):
    """The artifact read back from disk is what gets scored: the final (adapting) evaluation."""
    quant_obj = read_artifact(artifact)
    run.base_model.load_state_dict(dequantize_state_dict(quant_obj), strict=True)
    sync_device(run.ctx.device)
    t_eval = time.perf_counter()
    val_loss, val_bpb = evaluate(run.model, val_tokens, run.h, run.ctx, final=True)
    sync_device(run.ctx.device)
    name = f"final_{QUANT_LABEL}_{COMPRESS_LABEL}_roundtrip"
    log0(f"{name} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t_eval):.0f}ms")
    log0(f"{name}_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")


def teardown(ctx):
    if ctx.distributed:
        dist.barrier()  # no rank tears the group down while another still uses it
        dist.destroy_process_group()
        if ctx.device.type == "cpu":
            # gloo ranks sometimes abort in C++ teardown at exit ("terminate called without an active exception");
            # every result is written, so skip the teardown
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def main():
    h = Hyperparameters()
    ctx = setup(h)
    val_tokens = load_validation(h, ctx)
    run = build_model(h, ctx)
    probing = bool(os.environ.get("GOLFC_PROBE"))  # the verifier's probe mode (core/probe): given streams
    if probing or h.eval_only:  # scoring what a run ends with: every phase it declares switched on
        for _, name in run.phase_plan:
            switch_phase(run, name, True)
    if probing:
        probe_eval(run)
    elif h.eval_only:  # score a saved artifact with this program's evaluation, nothing trained
        roundtrip_eval(run, val_tokens, h.eval_only)
    else:
        prepare_training(run)
        compile_warmup(run)
        train(run, val_tokens)
        roundtrip_eval(run, val_tokens, export_artifact(run.base_model, h, run.ctx, train_ms=run.train_ms))
    teardown(run.ctx)


if __name__ == "__main__":
    try:
        main()
    except (RunInputError, FileNotFoundError) as exc:  # bad input: one line naming it, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
