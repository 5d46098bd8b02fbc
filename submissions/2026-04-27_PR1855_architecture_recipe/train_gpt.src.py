"""Parameter Golf training script, built by golfc 0.1.0.

Plugins: xsa, partial_rope, ln_scale, leaky_relu2, parallel_residuals, depth_recurrence, unet_gated_skips, muon_eq_r, polar_ns, weight_decay, ema, warmdown_frac, sparse_attn_gate, smear_gate, ttt, varlen, fused_ce, int6, gptq, sdclip, lqer, pergroup.
Active: core, sdpa_attention, rope, relu2_mlp, unet_blocks, muon, flat_allreduce, warmdown_schedule, int8_quant, zlib_compress, token_stream_loader, train_calibration, plain_eval, xsa, partial_rope, ln_scale, leaky_relu2, parallel_residuals, depth_recurrence, unet_gated_skips, muon_eq_r, polar_ns, weight_decay, ema, warmdown_frac, sparse_attn_gate, smear_gate, ttt, varlen, fused_ce, int6, gptq, sdclip, lqer, pergroup.
Pinned: ADAM_WD=0.02, BETA2=0.99, EMA_DECAY=0.9965, EMBED_WD=0.085, ENABLE_LOOPING_AT=0.35, FUSED_CE_ENABLED=1, GPTQ_CALIB_BATCHES=16, GPTQ_RESERVE_SECONDS=0.5, GRAD_CLIP_NORM=0.3, LN_SCALE=1, LOOP_END=5, LOOP_START=3, LQER_GROUP=64, LQER_RANK=4, LQER_TOP_K=3, MATRIX_LR=0.026, MIN_LR=0.1, MLP_MULT=4, MUON_MOMENTUM=0.97, MUON_MOMENTUM_WARMUP_START=0.92, MUON_MOMENTUM_WARMUP_STEPS=1500, MUON_ROW_NORMALIZE=1, MUON_WD=0.095, NUM_LAYERS=11, NUM_LOOPS=2, PARALLEL_FINAL_LANE=mean, PARALLEL_START_LAYER=8, PERGROUP_REORDER_PATTERNS=tok_emb,attn.c_q,mlp.fc, PHASED_TTT_NUM_PHASES=3, PHASED_TTT_PREFIX_DOCS=2500, QK_GAIN_INIT=5.0, QUANT_EMBED_BITS=7, ROPE_DIMS=16, SCALAR_LR=0.02, SDCLIP_ATTN_SIGMAS=13.0, SDCLIP_EMBED_SIGMAS=14.0, SDCLIP_MATRIX_SIGMAS=12.85, SDCLIP_MLP_SIGMAS=11.5, SKIP_GATES_ENABLED=1, SMEAR_GATE_WINDOW=12, SPARSE_ATTN_GATE_SCALE=0.5, SPARSE_ATTN_GATE_WINDOW=12, TIED_EMBED_LR=0.03, TRAIN_BATCH_TOKENS=786432, TRAIN_SEQ_LEN=2048, TTT_BETA1=0, TTT_BETA2=0.99, TTT_LORA_ALPHA=144, TTT_LORA_CHUNK=48, TTT_LORA_LR=0.0001, TTT_LORA_RANK=80, TTT_LORA_TARGETS=c_q,c_k,c_v,attn,mlp,head, TTT_MODE=phased, TTT_WEIGHT_DECAY=0.5, VOCAB_SIZE=8192, WARMDOWN_FRAC=0.85, XSA_LAST_N=11.

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
        'MUON_MOMENTUM_WARMUP_STEPS', 'XSA_LAST_N', 'ROPE_DIMS', 'PARALLEL_START_LAYER',
        'PARALLEL_RESIDUAL_START', 'NUM_LOOPS', 'LOOP_START', 'LOOP_END', 'SPARSE_ATTN_GATE_WINDOW',
        'SMEAR_GATE_WINDOW', 'TTT_CHUNK_TOKENS', 'TTT_EPOCHS', 'TTT_BATCH_SEQS', 'TTT_LORA_RANK',
        'TTT_LORA_CHUNK', 'TTT_LORA_BATCH', 'PHASED_TTT_PREFIX_DOCS', 'PHASED_TTT_NUM_PHASES',
        'GLOBAL_TTT_EPOCHS', 'GLOBAL_TTT_CHUNK_TOKENS', 'GLOBAL_TTT_BATCH_SEQS', 'QUANT_MLP_BITS',
        'QUANT_ATTN_BITS', 'QUANT_EMBED_BITS', 'QUANT_OTHER_BITS', 'QUANT_KEEP_FLOAT_NUMEL',
        'GPTQ_CALIB_BATCHES', 'GPTQ_BLOCK_SIZE', 'LQER_RANK', 'LQER_TOP_K', 'LQER_GROUP',
        'PERGROUP_STREAM_BYTES',
    ),
    floats=(
        'MAX_WALLCLOCK_SECONDS', 'GPTQ_RESERVE_SECONDS', 'GRAD_CLIP_NORM', 'ROPE_BASE',
        'LOGIT_SOFTCAP', 'QK_GAIN_INIT', 'TIED_EMBED_INIT_STD', 'MATRIX_LR', 'MUON_MOMENTUM',
        'TIED_EMBED_LR', 'EMBED_LR', 'HEAD_LR', 'SCALAR_LR', 'BETA1', 'BETA2', 'ADAM_EPS',
        'MUON_MOMENTUM_WARMUP_START', 'INT8_MIN_SCALE', 'NEGATIVE_SLOPE', 'ENABLE_LOOPING_AT',
        'MUON_WD', 'EMBED_WD', 'ADAM_WD', 'WD_TAPER_START_FRAC', 'WD_TAPER_FINAL_MULT', 'EMA_DECAY',
        'WARMDOWN_FRAC', 'MIN_LR', 'SPARSE_ATTN_GATE_SCALE', 'SPARSE_ATTN_GATE_INIT_STD', 'TTT_LR',
        'TTT_MOMENTUM', 'TTT_GRAD_CLIP', 'TTT_LORA_LR', 'TTT_LORA_ALPHA', 'TTT_BETA1', 'TTT_BETA2',
        'TTT_WEIGHT_DECAY', 'GLOBAL_TTT_LR', 'GLOBAL_TTT_MOMENTUM', 'GLOBAL_TTT_GRAD_CLIP',
        'QUANT_CLIP_PERCENTILE', 'GPTQ_DAMP', 'SDCLIP_MATRIX_SIGMAS', 'SDCLIP_MLP_SIGMAS',
        'SDCLIP_ATTN_SIGMAS', 'SDCLIP_EMBED_SIGMAS', 'HESSIAN_CLIP_LAMBDA',
    ),
    flags=(
        'TIE_EMBEDDINGS', 'ROPE_BF16_TABLES', 'COMPILE_TUNING', 'LN_SCALE', 'SKIP_GATES_ENABLED',
        'MUON_ROW_NORMALIZE', 'SMEAR_BOS_MASK', 'FUSED_CE_ENABLED', 'PERGROUP_TRANSPOSE',
        'PERGROUP_SHUFFLE',
    ),
    int_lists=(
        'LOOP_SCHEDULE',
    ),
    choices={
        'DEVICE': ('auto', 'cuda', 'cpu'),
        'SDPA_BACKEND': ('auto', 'cudnn', 'flash', 'efficient', 'math'),
        'PARALLEL_FINAL_LANE': ('mean', 'attn', 'mlp'),
        'TTT_MODE': ('sgd', 'lora', 'phased'),
        'VARLEN_KERNEL': ('auto', 'flex', 'sdpa'),
        'PERGROUP_BACKEND': ('auto', 'lzma', 'zstd', 'brotli'),
        'PERGROUP_REORDER': ('none', 'greedy', 'auto'),
    },
)


class Hyperparameters:
    """Every knob is an environment variable of the same name, read once at import."""

    # -- core
    data_path = os.environ.get('DATA_PATH', './data/datasets/fineweb10B_sp1024')  # folder with fineweb_train_*.bin / fineweb_val_*.bin
    tokenizer_path = os.environ.get('TOKENIZER_PATH', './data/tokenizers/fineweb_1024_bpe.model')  # SentencePiece model used for BPB tables
    run_id = os.environ.get('RUN_ID', '')  # log name under logs/ (default: a fresh uuid4)
    seed = int(os.environ.get('SEED', 1337))  # seed for python, numpy and torch
    vocab_size = int(os.environ.get('VOCAB_SIZE', 8192))  # must equal the tokenizer's vocab size
    val_batch_size = int(os.environ.get('VAL_BATCH_SIZE', 524288))  # validation tokens per round, over all ranks and micro-batches
    val_loss_every = int(os.environ.get('VAL_LOSS_EVERY', 1000))  # validate every N steps (0: only at the end)
    train_log_every = int(os.environ.get('TRAIN_LOG_EVERY', 200))  # print train_loss every N steps
    iterations = int(os.environ.get('ITERATIONS', 20000))  # maximum optimizer steps
    warmup_steps = int(os.environ.get('WARMUP_STEPS', 20))  # untimed compile-warmup steps, after which weights, optimizers and data reset
    train_batch_tokens = int(os.environ.get('TRAIN_BATCH_TOKENS', 786432))  # tokens per optimizer step, over all ranks and micro-batches
    train_seq_len = int(os.environ.get('TRAIN_SEQ_LEN', 2048))  # sequence length for training and validation windows
    max_wallclock_seconds = float(os.environ.get('MAX_WALLCLOCK_SECONDS', 600.0))  # training wall-clock cap in seconds (0: none)
    gptq_reserve_seconds = float(os.environ.get('GPTQ_RESERVE_SECONDS', 0.5))  # under a cap, training stops this much early so that export's calibration (GPTQ) fits inside it
    grad_clip_norm = float(os.environ.get('GRAD_CLIP_NORM', 0.3))  # clip the global gradient norm (0: off)
    num_layers = int(os.environ.get('NUM_LAYERS', 11))  # transformer blocks
    model_dim = int(os.environ.get('MODEL_DIM', 512))  # residual width d
    num_heads = int(os.environ.get('NUM_HEADS', 8))  # query heads
    num_kv_heads = int(os.environ.get('NUM_KV_HEADS', 4))  # key/value heads (grouped-query attention)
    tie_embeddings = bool(int(os.environ.get('TIE_EMBEDDINGS', '1')))  # output head shares the token embedding
    rope_base = float(os.environ.get('ROPE_BASE', 10000.0))  # RoPE frequency base
    rope_bf16_tables = bool(int(os.environ.get('ROPE_BF16_TABLES', '1')))  # RoPE tables of bf16 frequencies, rounded to bf16, as the reference trains with on a GPU (0: fp32)
    logit_softcap = float(os.environ.get('LOGIT_SOFTCAP', 30.0))  # logits = c * tanh(logits / c)
    qk_gain_init = float(os.environ.get('QK_GAIN_INIT', 5.0))  # initial per-head query gain
    tied_embed_init_std = float(os.environ.get('TIED_EMBED_INIT_STD', 0.005))  # std of the tied embedding init
    compile = int(os.environ.get('COMPILE', -1))  # torch.compile the model and optimizer kernels: 1 on, 0 off, -1 on with CUDA only
    compile_tuning = bool(int(os.environ.get('COMPILE_TUNING', '0')))  # inductor coordinate-descent tuning of the compiled kernels
    device = os.environ.get('DEVICE', 'auto')  # auto (cuda if available), cuda or cpu
    eval_only = os.environ.get('EVAL_ONLY', '')  # an artifact (final_model.*.ptz) to score without training (empty: train, export, score)

    # -- plugins/sdpa_attention
    sdpa_backend = os.environ.get('SDPA_BACKEND', 'auto')  # auto (PyTorch's choice), cudnn, flash, efficient or math

    # -- plugins/relu2_mlp
    mlp_mult = int(os.environ.get('MLP_MULT', 4))  # MLP hidden width = MLP_MULT * MODEL_DIM

    # -- plugins/muon
    matrix_lr = float(os.environ.get('MATRIX_LR', 0.026))  # Muon learning rate for 2-D block matrices
    muon_momentum = float(os.environ.get('MUON_MOMENTUM', 0.97))  # Muon Nesterov momentum (after warmup)
    muon_backend_steps = int(os.environ.get('MUON_BACKEND_STEPS', 5))  # Newton-Schulz iterations
    tied_embed_lr = float(os.environ.get('TIED_EMBED_LR', 0.03))  # Adam lr of the tied embedding
    embed_lr = float(os.environ.get('EMBED_LR', 0.6))  # Adam lr of the embedding when untied
    head_lr = float(os.environ.get('HEAD_LR', 0.008))  # Adam lr of the output head when untied
    scalar_lr = float(os.environ.get('SCALAR_LR', 0.02))  # Adam lr of vectors, scalars and skip weights
    beta1 = float(os.environ.get('BETA1', 0.9))  # Adam beta1
    beta2 = float(os.environ.get('BETA2', 0.99))  # Adam beta2
    adam_eps = float(os.environ.get('ADAM_EPS', 1e-08))  # Adam epsilon

    # -- plugins/warmdown_schedule
    warmdown_iters = int(os.environ.get('WARMDOWN_ITERS', 1200))  # length of the final linear LR decay, in steps
    muon_momentum_warmup_start = float(os.environ.get('MUON_MOMENTUM_WARMUP_START', 0.92))  # Muon momentum at step 0
    muon_momentum_warmup_steps = int(os.environ.get('MUON_MOMENTUM_WARMUP_STEPS', 1500))  # steps to reach MUON_MOMENTUM

    # -- plugins/int8_quant
    int8_min_scale = float(os.environ.get('INT8_MIN_SCALE', 0.007874015748031496))  # floor of the per-row scale: the reference's 1/127 (0: no floor)

    # -- plugins/xsa
    xsa_last_n = int(os.environ.get('XSA_LAST_N', 11))  # apply XSA on the last N layers (NUM_LAYERS or more: every layer)

    # -- plugins/partial_rope
    rope_dims = int(os.environ.get('ROPE_DIMS', 16))  # dims of each head that RoPE rotates (the first ROPE_DIMS, half-split pairs); even, at most MODEL_DIM / NUM_HEADS; 0: all

    # -- plugins/ln_scale
    ln_scale = bool(int(os.environ.get('LN_SCALE', '1')))  # scale the norm feeding block i's attention and MLP by 1/sqrt(i + 1) (0: plain rms_norm, for an ablation without a rebuild)

    # -- plugins/leaky_relu2
    negative_slope = float(os.environ.get('NEGATIVE_SLOPE', 0.5))  # slope of the leaky relu below 0, before squaring

    # -- plugins/parallel_residuals
    parallel_start_layer = int(os.environ.get('PARALLEL_START_LAYER', 8))  # first layer of the two-lane form (-1: none)
    parallel_final_lane = os.environ.get('PARALLEL_FINAL_LANE', 'mean')  # what the stack returns after the last two-lane block: the mean of the lanes, lane 0 (attn) or lane 1 (mlp)
    parallel_residual_start = int(os.environ.get('PARALLEL_RESIDUAL_START', -1))  # first layer of the GPT-J form (-1: none; layers from PARALLEL_START_LAYER on take the two-lane form)

    # -- plugins/depth_recurrence
    num_loops = int(os.environ.get('NUM_LOOPS', 2))  # extra passes over LOOP_START..LOOP_END once looping is on (0: never loop)
    loop_start = int(os.environ.get('LOOP_START', 3))  # first layer of the looped span
    loop_end = int(os.environ.get('LOOP_END', 5))  # last layer of the looped span (inclusive)
    enable_looping_at = float(os.environ.get('ENABLE_LOOPING_AT', 0.35))  # fraction of the run (wall clock under a cap, else steps) at which looping switches on
    loop_schedule = tuple(int(v) for v in os.environ.get('LOOP_SCHEDULE', '').split(',') if v.strip())  # the looping schedule as a list of layer indices, e.g. 0,1,2,3,4,5,4,5,6,7,8 (empty: from NUM_LOOPS, LOOP_START and LOOP_END)

    # -- plugins/unet_gated_skips
    skip_gates_enabled = bool(int(os.environ.get('SKIP_GATES_ENABLED', '1')))  # gate each U-Net skip (0: the plain U-Net skips of unet_blocks, no gates)

    # -- plugins/muon_eq_r
    muon_row_normalize = bool(int(os.environ.get('MUON_ROW_NORMALIZE', '1')))  # MuonEq-R: normalise each output row of Muon's update before orthogonalising

    # -- plugins/weight_decay
    muon_wd = float(os.environ.get('MUON_WD', 0.095))  # decoupled weight decay of Muon's matrices: p *= 1 - lr * MUON_WD per step
    embed_wd = float(os.environ.get('EMBED_WD', 0.085))  # AdamW decoupled weight decay of the token embedding
    adam_wd = float(os.environ.get('ADAM_WD', 0.02))  # AdamW decoupled weight decay of Adam's other groups (scalars, untied head)
    wd_taper_start_frac = float(os.environ.get('WD_TAPER_START_FRAC', 0.7))  # run fraction where Muon's decay starts to taper
    wd_taper_final_mult = float(os.environ.get('WD_TAPER_FINAL_MULT', 1.0))  # Muon decay multiplier at the end of the run (1: no taper; 0.5 in PR #1729)

    # -- plugins/ema
    ema_decay = float(os.environ.get('EMA_DECAY', 0.9965))  # weight of the old average at each step (1: keep the initial weights)

    # -- plugins/warmdown_frac
    warmdown_frac = float(os.environ.get('WARMDOWN_FRAC', 0.85))  # fraction of the run (wall clock under a cap, else steps) spent in warmdown
    min_lr = float(os.environ.get('MIN_LR', 0.1))  # floor of the LR multiplier during the warmdown

    # -- plugins/sparse_attn_gate
    sparse_attn_gate_window = int(os.environ.get('SPARSE_ATTN_GATE_WINDOW', 12))  # dims of the attention input the gate reads (the records' GATE_WINDOW)
    sparse_attn_gate_scale = float(os.environ.get('SPARSE_ATTN_GATE_SCALE', 0.5))  # multiplies W x before the sigmoid (PR #1855: 0.5; PR #1787: 1.0)
    sparse_attn_gate_init_std = float(os.environ.get('SPARSE_ATTN_GATE_INIT_STD', 0.0))  # std of the normal init of W (0: zeros, the records' default)

    # -- plugins/smear_gate
    smear_gate_window = int(os.environ.get('SMEAR_GATE_WINDOW', 12))  # embedding dims the gate reads (the records' GATE_WINDOW)
    smear_bos_mask = bool(int(os.environ.get('SMEAR_BOS_MASK', '1')))  # never smear the previous token into a BOS (a document start)

    # -- plugins/ttt
    ttt_mode = os.environ.get('TTT_MODE', 'phased')  # sgd: all weights, SGD with momentum on each scored chunk; lora: per-document LoRA adapters (TTT_LORA_TARGETS), one Adam step per scored chunk; phased: lora, plus global SGD of every weight on the documents scored so far at PHASED_TTT_NUM_PHASES boundaries
    ttt_chunk_tokens = int(os.environ.get('TTT_CHUNK_TOKENS', 32768))  # validation tokens per chunk (a window belongs to its first target's)
    ttt_epochs = int(os.environ.get('TTT_EPOCHS', 3))  # passes over each scored chunk
    ttt_lr = float(os.environ.get('TTT_LR', 0.002))  # SGD learning rate at the first chunk (cosine to 0 over the chunks)
    ttt_momentum = float(os.environ.get('TTT_MOMENTUM', 0.9))  # SGD momentum
    ttt_grad_clip = float(os.environ.get('TTT_GRAD_CLIP', 1.0))  # clip the gradient norm of each TTT step (0: off)
    ttt_batch_seqs = int(os.environ.get('TTT_BATCH_SEQS', 32))  # TRAIN_SEQ_LEN sequences per TTT step on each rank
    ttt_lora_rank = int(os.environ.get('TTT_LORA_RANK', 80))  # lora: rank of each document's adapters
    ttt_lora_lr = float(os.environ.get('TTT_LORA_LR', 0.0001))  # lora: Adam learning rate of the adapters (betas 0.9, 0.95)
    ttt_lora_chunk = int(os.environ.get('TTT_LORA_CHUNK', 48))  # lora: targets per scored chunk of a document (then one Adam step)
    ttt_lora_batch = int(os.environ.get('TTT_LORA_BATCH', 64))  # lora: documents adapted side by side on each rank (one adapter per row)
    ttt_lora_targets = os.environ.get('TTT_LORA_TARGETS', 'c_q,c_k,c_v,attn,mlp,head')  # lora: adapted modules, comma-separated ends of module names (c_q, c_k, c_v, proj, mlp.fc ...: the linear itself; attn, mlp: parallel to the sublayer; head: the logits)
    ttt_lora_alpha = float(os.environ.get('TTT_LORA_ALPHA', 144.0))  # lora: adapter output x ALPHA / rank (PR #1767: 144); 0: x 1
    ttt_beta1 = float(os.environ.get('TTT_BETA1', 0.0))  # lora: Adam beta1 of the adapters (the 04-27 record: 0)
    ttt_beta2 = float(os.environ.get('TTT_BETA2', 0.99))  # lora: Adam beta2 of the adapters (the 04-27 record: 0.99)
    ttt_weight_decay = float(os.environ.get('TTT_WEIGHT_DECAY', 0.5))  # lora: decoupled (AdamW) weight decay of the adapters (04-27: 0.5)
    phased_ttt_prefix_docs = int(os.environ.get('PHASED_TTT_PREFIX_DOCS', 2500))  # phased: documents, from the stream's start, whose scoring the global SGD phases are spread over
    phased_ttt_num_phases = int(os.environ.get('PHASED_TTT_NUM_PHASES', 3))  # phased: global SGD after document prefix * (p + 1) // phases, p < phases
    global_ttt_lr = float(os.environ.get('GLOBAL_TTT_LR', 0.001))  # phased: global SGD rate at its first chunk (cosine to 0 over the chunks)
    global_ttt_momentum = float(os.environ.get('GLOBAL_TTT_MOMENTUM', 0.9))  # phased: global SGD momentum (a fresh optimizer per phase)
    global_ttt_epochs = int(os.environ.get('GLOBAL_TTT_EPOCHS', 1))  # phased: passes of each global SGD over the documents scored so far
    global_ttt_chunk_tokens = int(os.environ.get('GLOBAL_TTT_CHUNK_TOKENS', 32768))  # phased: tokens per global SGD chunk (one rate of the cosine)
    global_ttt_batch_seqs = int(os.environ.get('GLOBAL_TTT_BATCH_SEQS', 32))  # phased: TRAIN_SEQ_LEN sequences per global SGD step on each rank
    global_ttt_grad_clip = float(os.environ.get('GLOBAL_TTT_GRAD_CLIP', 1.0))  # phased: clip the gradient norm of each global SGD step (0: off)

    # -- plugins/varlen
    varlen_kernel = os.environ.get('VARLEN_KERNEL', 'auto')  # auto (FlexAttention document mask when compiled on CUDA, else masked SDPA), flex or sdpa

    # -- plugins/fused_ce
    fused_ce_enabled = bool(int(os.environ.get('FUSED_CE_ENABLED', '1')))  # use the Triton loss kernels on CUDA training steps (0: the eager loss)

    # -- plugins/int6
    quant_mlp_bits = int(os.environ.get('QUANT_MLP_BITS', 6))  # bits of MLP matrices (.mlp.)
    quant_attn_bits = int(os.environ.get('QUANT_ATTN_BITS', 6))  # bits of attention matrices (.attn.)
    quant_embed_bits = int(os.environ.get('QUANT_EMBED_BITS', 7))  # bits of the embedding / head (tok_emb, lm_head)
    quant_other_bits = int(os.environ.get('QUANT_OTHER_BITS', 6))  # bits of every other large float tensor
    quant_keep_float_numel = int(os.environ.get('QUANT_KEEP_FLOAT_NUMEL', 65536))  # tensors with at most this many elements stay float
    quant_clip_percentile = float(os.environ.get('QUANT_CLIP_PERCENTILE', 99.99984))  # per-row clip: this percentile of |w| (no stage choosing it)

    # -- plugins/gptq
    gptq_calib_batches = int(os.environ.get('GPTQ_CALIB_BATCHES', 16))  # calibration batches (each one training micro-batch per rank)
    gptq_block_size = int(os.environ.get('GPTQ_BLOCK_SIZE', 128))  # columns per lazy-update block
    gptq_damp = float(os.environ.get('GPTQ_DAMP', 0.01))  # damping added to diag(H), as a fraction of its mean

    # -- plugins/sdclip
    sdclip_matrix_sigmas = float(os.environ.get('SDCLIP_MATRIX_SIGMAS', 12.85))  # k for attention, MLP and other matrices
    sdclip_mlp_sigmas = float(os.environ.get('SDCLIP_MLP_SIGMAS', 11.5))  # k for MLP matrices (0: SDCLIP_MATRIX_SIGMAS)
    sdclip_attn_sigmas = float(os.environ.get('SDCLIP_ATTN_SIGMAS', 13.0))  # k for attention matrices (0: SDCLIP_MATRIX_SIGMAS)
    sdclip_embed_sigmas = float(os.environ.get('SDCLIP_EMBED_SIGMAS', 14.0))  # k for the embedding
    hessian_clip_lambda = float(os.environ.get('HESSIAN_CLIP_LAMBDA', 0.0))  # Hessian-aware clip: k*std*(1+lambda*(row importance-1)); 0: plain SDClip; > 0 needs gptq (PR #1412 used 0.175)

    # -- plugins/lqer
    lqer_rank = int(os.environ.get('LQER_RANK', 4))  # rank of each correction
    lqer_top_k = int(os.environ.get('LQER_TOP_K', 3))  # matrices corrected: those with the largest ||W - Q s||_F
    lqer_group = int(os.environ.get('LQER_GROUP', 64))  # B's int4 values share one fp16 scale per group of this many

    # -- plugins/pergroup
    pergroup_backend = os.environ.get('PERGROUP_BACKEND', 'auto')  # auto (per stream the smallest of lzma, zstd and brotli installed), lzma, zstd or brotli
    pergroup_reorder = os.environ.get('PERGROUP_REORDER', 'greedy')  # row order of the int8 matrices of PERGROUP_REORDER_PATTERNS: none, greedy (L1 nearest neighbour, permutation stored; O(rows^2 cols)), or auto (greedy where a role's group then compresses smaller by more than its permutations)
    pergroup_reorder_patterns = os.environ.get('PERGROUP_REORDER_PATTERNS', 'tok_emb,attn.c_q,mlp.fc')  # roles (substrings, comma-separated) whose rows PERGROUP_REORDER reorders (the record's: tok_emb,c_q,mlp.fc; README: what paid here)
    pergroup_transpose = bool(int(os.environ.get('PERGROUP_TRANSPOSE', '1')))  # store int8 matrices column by column
    pergroup_shuffle = bool(int(os.environ.get('PERGROUP_SHUFFLE', '1')))  # byte-shuffle each non-int8 group by its element size
    pergroup_stream_bytes = int(os.environ.get('PERGROUP_STREAM_BYTES', 65536))  # a group this large is compressed on its own (0: one stream)


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
        'XSA_LAST_N': (('>=', 0),),
        'ROPE_DIMS': (('>=', 0),),
        'NEGATIVE_SLOPE': (('>=', 0.0),),
        'PARALLEL_START_LAYER': (('>=', -1),),
        'PARALLEL_RESIDUAL_START': (('>=', -1),),
        'NUM_LOOPS': (('>=', 0),),
        'LOOP_START': (('>=', 0),),
        'LOOP_END': (('>=', 0),),
        'ENABLE_LOOPING_AT': (('>=', 0.0), ('<=', 1.0)),
        'LOOP_SCHEDULE': (('>=', 0),),
        'MUON_WD': (('>=', 0.0),),
        'EMBED_WD': (('>=', 0.0),),
        'ADAM_WD': (('>=', 0.0),),
        'WD_TAPER_START_FRAC': (('>=', 0.0), ('<=', 1.0)),
        'WD_TAPER_FINAL_MULT': (('>=', 0.0),),
        'EMA_DECAY': (('>=', 0.0), ('<=', 1.0)),
        'WARMDOWN_FRAC': (('>=', 0.0), ('<=', 1.0)),
        'MIN_LR': (('>=', 0.0), ('<=', 1.0)),
        'SPARSE_ATTN_GATE_WINDOW': (('>=', 1),),
        'SPARSE_ATTN_GATE_INIT_STD': (('>=', 0.0),),
        'SMEAR_GATE_WINDOW': (('>=', 1),),
        'TTT_CHUNK_TOKENS': (('>=', 1),),
        'TTT_EPOCHS': (('>=', 0),),
        'TTT_LR': (('>=', 0.0),),
        'TTT_MOMENTUM': (('>=', 0.0), ('<=', 1.0)),
        'TTT_GRAD_CLIP': (('>=', 0.0),),
        'TTT_BATCH_SEQS': (('>=', 1),),
        'TTT_LORA_RANK': (('>=', 1),),
        'TTT_LORA_LR': (('>=', 0.0),),
        'TTT_LORA_CHUNK': (('>=', 1),),
        'TTT_LORA_BATCH': (('>=', 1),),
        'TTT_LORA_ALPHA': (('>=', 0.0),),
        'TTT_BETA1': (('>=', 0.0), ('<=', 1.0)),
        'TTT_BETA2': (('>=', 0.0), ('<=', 1.0)),
        'TTT_WEIGHT_DECAY': (('>=', 0.0),),
        'PHASED_TTT_PREFIX_DOCS': (('>=', 0),),
        'PHASED_TTT_NUM_PHASES': (('>=', 1),),
        'GLOBAL_TTT_LR': (('>=', 0.0),),
        'GLOBAL_TTT_MOMENTUM': (('>=', 0.0), ('<=', 1.0)),
        'GLOBAL_TTT_EPOCHS': (('>=', 0),),
        'GLOBAL_TTT_CHUNK_TOKENS': (('>=', 1),),
        'GLOBAL_TTT_BATCH_SEQS': (('>=', 1),),
        'GLOBAL_TTT_GRAD_CLIP': (('>=', 0.0),),
        'QUANT_MLP_BITS': (('>=', 2), ('<=', 8)),
        'QUANT_ATTN_BITS': (('>=', 2), ('<=', 8)),
        'QUANT_EMBED_BITS': (('>=', 2), ('<=', 8)),
        'QUANT_OTHER_BITS': (('>=', 2), ('<=', 8)),
        'QUANT_KEEP_FLOAT_NUMEL': (('>=', 0),),
        'QUANT_CLIP_PERCENTILE': (('>', 0.0), ('<=', 100.0)),
        'GPTQ_CALIB_BATCHES': (('>=', 1),),
        'GPTQ_BLOCK_SIZE': (('>=', 1),),
        'GPTQ_DAMP': (('>', 0.0),),
        'SDCLIP_MATRIX_SIGMAS': (('>', 0.0),),
        'SDCLIP_MLP_SIGMAS': (('>=', 0.0),),
        'SDCLIP_ATTN_SIGMAS': (('>=', 0.0),),
        'SDCLIP_EMBED_SIGMAS': (('>', 0.0),),
        'HESSIAN_CLIP_LAMBDA': (('>=', 0.0),),
        'LQER_RANK': (('>=', 1),),
        'LQER_TOP_K': (('>=', 0),),
        'LQER_GROUP': (('>=', 1),),
        'PERGROUP_STREAM_BYTES': (('>=', 0),),
    },
    rules=(
        ('multiple', 'MODEL_DIM', 'NUM_HEADS', 1, 'the head dimension is MODEL_DIM / NUM_HEADS'),  # core
        ('multiple', 'NUM_HEADS', 'NUM_KV_HEADS', 1, 'query heads share key/value heads in equal groups'),  # core
        ('even_quotient', 'MODEL_DIM', 'NUM_HEADS', 1, 'RoPE rotates pairs of the head dimension'),  # core
        ('multiple', 'TRAIN_BATCH_TOKENS', 'TRAIN_SEQ_LEN', 8, 'every step is 8 micro-batches of whole sequences'),  # core
        ('at_least', 'VAL_BATCH_SIZE', 'TRAIN_SEQ_LEN', 8, 'one window per rank and micro-batch, on 1 to 8 GPUs'),  # plain_eval
        ('at_least', 'LOOP_END', 'LOOP_START', 1, 'the looped span is LOOP_START..LOOP_END'),  # depth_recurrence
        ('at_least', 'TTT_CHUNK_TOKENS', 'TRAIN_SEQ_LEN', 1, 'a chunk trains on whole TRAIN_SEQ_LEN sequences'),  # ttt
        ('at_least', 'GLOBAL_TTT_CHUNK_TOKENS', 'TRAIN_SEQ_LEN', 1, 'a global SGD chunk trains on whole TRAIN_SEQ_LEN sequences'),  # ttt
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
# plugins/xsa: exclusive self-attention (arXiv 2603.09078; in the challenge from PR #265) on the last
# XSA_LAST_N layers: y <- y - (y . v_hat) v_hat with v_hat the token's own unit value vector
# ==================================================================================================



def exclusive_self_attention(y, v):
    """y (B, T, H, D) attention output, v (B, T, Hkv, D) the same tokens' values -> y (B, T, H, D).

    The H query heads share Hkv value heads in groups of H // Hkv (GQA): each group is projected against its
    own value head through a (B, T, Hkv, H // Hkv, D) view, so no value is repeated per query head.
    """
    B, T, H, D = y.shape
    Hkv = v.size(2)
    groups = y.reshape(B, T, Hkv, H // Hkv, D)  # (B, T, Hkv, G, D)
    v_hat = F.normalize(v, dim=-1).unsqueeze(-2)  # (B, T, Hkv, 1, D)
    along_own_value = (groups * v_hat).sum(-1, keepdim=True) * v_hat  # (B, T, Hkv, G, D)
    return (groups - along_own_value).reshape(B, T, H, D)


class ExclusiveSelfAttention(nn.Module):
    """attention_post module: XSA on this layer when it is one of the last XSA_LAST_N, else the identity.
    No parameters (the state dict gains nothing)."""

    def __init__(self, h, layer):
        super().__init__()
        self.active = layer >= h.num_layers - h.xsa_last_n

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), v (B, T, Hkv, D), x (B, T, d) unused
        return exclusive_self_attention(y, v) if self.active else y


# ==================================================================================================
# plugins/ln_scale: LN scale (2026-03-21_11L_XSA4_EMA_PartialRoPE, PR #315; every later record): the RMSNorm
# output that feeds the attention and the MLP of block i is multiplied by 1/sqrt(i + 1), i the block's index
# (the same factor each time a block runs under depth recurrence, as the records do it).
# ==================================================================================================




def ln_scale_factor(layer):
    """1 / sqrt(layer + 1): 1 for the first block, 1/sqrt(2), 1/sqrt(3), ... (a Python float: a constant of
    the compiled graph)."""
    return 1.0 / math.sqrt(layer + 1)


def ln_scaled_norm(x, layer, h, fctx):
    """block_norm slot: x (B, T, d) -> rms_norm(x) * 1/sqrt(layer + 1); LN_SCALE=0: rms_norm(x) alone."""
    if not h.ln_scale:
        return rms_norm(x)
    return rms_norm(x) * ln_scale_factor(layer)


# ==================================================================================================
# plugins/leaky_relu2: feed-forward block y = proj(leaky_relu(fc(x), 0.5)^2)   (LeakyReLU^2: PR #493,
# adopted by the 2026-03-23 record, PR #549)
# ==================================================================================================




def leaky_relu_square(pre, slope):
    """leaky_relu(pre, slope)^2: pre^2 above 0, (slope * pre)^2 below; the gradient is 2*pre or 2*slope^2*pre."""
    return F.leaky_relu(pre, slope).square()


class LeakyReluSquaredMLP(nn.Module):
    """d -> MLP_MULT * d -> d with leaky_relu(x, NEGATIVE_SLOPE)^2 between; no biases. Unlike relu^2,
    negative pre-activations keep a (slope^2-damped) gradient, so no hidden unit dies."""

    def __init__(self, h, layer):
        super().__init__()
        hidden = h.mlp_mult * h.model_dim
        self.slope = h.negative_slope
        self.fc = CastedLinear(h.model_dim, hidden)
        self.proj = CastedLinear(hidden, h.model_dim, zero_init=True)  # each block starts as the identity

    def forward(self, x, fctx=None):  # (B, T, d) -> (B, T, d); fctx: the forward's ForwardContext (unused here)
        return self.proj(leaky_relu_square(self.fc(x), self.slope))  # hidden (B, T, MLP_MULT * d)


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
# plugins/parallel_residuals: attention and MLP side by side from a chosen layer on.
#   GPT-J form (PR #1412, #1493): x_in = mix(x, x0); x = x_in + a * attn(n(x_in)) + m * mlp(n(x_in))
#   two-lane form (PR #1204, #1530): lane 0 carries attention (and the U-Net skips), lane 1 the MLP:
#     A = a * attn(n(mix(lane0, x0))), M = m * mlp(n(lane1))
#     lane0 = r0 * lane0 + P00 * A + P10 * M;  lane1 = r1 * lane1 + P01 * A + P11 * M;  output (lane0 + lane1) / 2
# ==================================================================================================





# fp32, scalar Adam, exact in the artifact
CONTROL_TENSOR_NAME_PATTERNS.extend(["parallel_resid_lambdas", "parallel_post_lambdas"])


def parallel_form(h, layer):
    """'lanes' from PARALLEL_START_LAYER on, else 'gptj' from PARALLEL_RESIDUAL_START on, else None (sequential)."""
    if 0 <= h.parallel_start_layer <= layer:
        return "lanes"
    if 0 <= h.parallel_residual_start <= layer:
        return "gptj"
    return None


class ParallelResidualBlock(UNetBlock):
    """The block slot: UNetBlock (resid_mix, attn_scale, mlp_scale; the same parameters and names) on layers before
    the parallel ones, the GPT-J or the two-lane form from there on (the formulas above).

    Two lanes: the stream the stack hands from block to block (and the skip mixer adds the U-Net skips to) is lane
    0; lane 1 lives in the forward's cache. The first two-lane block starts lane 1 from the previous block's output
    (the stream before that position's skip, as the records start both lanes from it); the block at the schedule's
    last position returns the final lane (PARALLEL_FINAL_LANE), and a sequential layer after two-lane ones (only a
    hand-made schedule does that) first merges the lanes the same way. parallel_resid_lambdas (2,) start at 1.1 and
    parallel_post_lambdas (2, 2) [source attn|mlp, lane 0|1] at 1, as in the records (per layer here, (L, 2) and
    (L, 2, 2) there).
    """

    def __init__(self, h, layer):
        super().__init__(h, layer)
        self.form, self.final_lane = parallel_form(h, layer), h.parallel_final_lane
        if self.form == "lanes":
            self.parallel_resid_lambdas = nn.Parameter(torch.full((2,), 1.1, dtype=torch.float32))
            self.parallel_post_lambdas = nn.Parameter(torch.ones(2, 2, dtype=torch.float32))

    def norm(self, x, fctx):
        """The pre-norm of the parallel forms' attention and MLP inputs (x (B, T, d)): the block_norm slot (the
        baseline's rms_norm, or ln_scale's scaled one)."""
        return block_norm(x, self.layer, self.h, fctx)

    def merge(self, lane0, lane1):
        return lane0 if self.final_lane == "attn" else lane1 if self.final_lane == "mlp" else 0.5 * (lane0 + lane1)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        lanes = fctx.cache.get("parallel_lane1")
        if self.form != "lanes":
            if lanes is not None:  # a sequential layer after the lanes: merge them first
                x = self.merge(x, fctx.cache.pop("parallel_lane1"))
            x = self.gptj(x, x0, fctx) if self.form == "gptj" else super().forward(x, x0, fctx)
            fctx.cache["parallel_last_out"] = x  # where a first two-lane block starts lane 1 (no tensor op)
            return x
        lane0, lane1 = x, lanes if lanes is not None else fctx.cache.get("parallel_last_out", x)
        mix = self.resid_mix.to(x.dtype)
        attn = self.attn_scale.to(x.dtype) * self.attn(self.norm(mix[0] * lane0 + mix[1] * x0, fctx), fctx)
        mlp = self.mlp_scale.to(x.dtype) * self.mlp(self.norm(lane1, fctx), fctx)
        r, p = self.parallel_resid_lambdas.to(x.dtype), self.parallel_post_lambdas.to(x.dtype)
        lane0 = r[0] * lane0 + p[0, 0] * attn + p[1, 0] * mlp
        lane1 = r[1] * lane1 + p[0, 1] * attn + p[1, 1] * mlp
        if fctx.depth == len(fctx.schedule) - 1:  # the stack's last block: one stream again
            fctx.cache.pop("parallel_lane1", None)
            return self.merge(lane0, lane1)
        fctx.cache["parallel_lane1"] = lane1
        return lane0

    def gptj(self, x, x0, fctx):
        """x_in = resid_mix blend of x and x0; x_in + attn_scale * attn(n(x_in)) + mlp_scale * mlp(n(x_in))."""
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        n = self.norm(x, fctx)
        return x + self.attn_scale.to(x.dtype) * self.attn(n, fctx) + self.mlp_scale.to(x.dtype) * self.mlp(n, fctx)


# ==================================================================================================
# plugins/depth_recurrence: looped layers (PR #1204, #1394, #1493). Once the run phase "recurrence" is on (at
# ENABLE_LOOPING_AT of the run), the blocks run in the schedule
#   [0 .. S-1] + [S .. E] * (NUM_LOOPS + 1) + [E+1 .. L-1]          (S = LOOP_START, E = LOOP_END)
# e.g. 11 layers, S=3, E=5, 2 loops: 0 1 2 3 4 5 3 4 | 5 3 4 5 6 7 8 9 10 (17 virtual layers; the U-Net skips split
# it in half). The compile warmup compiles both graphs (core/train), so the switch compiles nothing in the loop.
# ==================================================================================================


LOOP_PHASE = "recurrence"


def loop_schedule(h):
    """The schedule once looping is on: LOOP_SCHEDULE when given, else the looped span repeated; one line (exit 2)
    for a span or an index that is not a layer."""
    L = h.num_layers
    if h.loop_schedule:
        bad = [i for i in h.loop_schedule if not 0 <= i < L]
        if bad:
            raise RunInputError(f"LOOP_SCHEDULE={','.join(map(str, h.loop_schedule))}: {bad} not a layer of "
                                f"NUM_LAYERS={L}; expected indices 0..{L - 1}")
        return tuple(h.loop_schedule)
    S, E = h.loop_start, h.loop_end
    if not 0 <= S <= E < L:
        raise RunInputError(f"LOOP_START={S} LOOP_END={E}: expected 0 <= LOOP_START <= LOOP_END < NUM_LAYERS={L}")
    return tuple(range(S)) + tuple(range(S, E + 1)) * (h.num_loops + 1) + tuple(range(E + 1, L))


def recurrent_layer_schedule(h, phases):
    """The layer_schedule slot: every layer once, in order, until the "recurrence" phase is on; the loop after."""
    return loop_schedule(h) if LOOP_PHASE in phases else tuple(range(h.num_layers))


class DepthRecurrenceEvents(RunEvents):
    """Declares the phase "recurrence" at ENABLE_LOOPING_AT (none when NUM_LOOPS=0 and no LOOP_SCHEDULE); the core
    switches it on at that fraction of the run on every rank at the same step, and the forwards read it from
    fctx.phases. A class attribute, so that skip mixers can size their weights by the looped schedule."""

    phases = ({LOOP_PHASE: Hyperparameters.enable_looping_at}
              if Hyperparameters.num_loops > 0 or Hyperparameters.loop_schedule else {})

    def __init__(self, model, h, ctx):
        super().__init__(model, h, ctx)
        if self.phases:
            log0(f"depth_recurrence: at {h.enable_looping_at:g} of the run, layers {list(loop_schedule(h))}")

    def phase(self, model, name, on):
        if name == LOOP_PHASE and on:
            schedule = loop_schedule(self.h)
            half = len(schedule) // 2
            log0(f"layer_loop:enabled encoder:{list(schedule[:half])} decoder:{list(schedule[half:])}")


# ==================================================================================================
# plugins/unet_gated_skips: U-Net skips with a learned sigmoid gate per decoder position and channel
# (PR #1089): x = lerp(w_i * skip, x, sigmoid(g_i)) = w_i * skip + sigmoid(g_i) * (x - w_i * skip)
# ==================================================================================================





# fp32 in training and in the artifact, trained by the scalar Adam group
CONTROL_TENSOR_NAME_PATTERNS.extend(["skip_gates"])


class GatedUNetSkips(UNetSkips):
    """UNetSkips (the first half of the schedule pushes, the rest pops in reverse) whose decoder position i mixes
    its saved output in through a gate: x = lerp(skip_weights[i] * skip, x, sigmoid(skip_gates[i])).

    skip_gates (n_skip, d) start at zero: at init each skip is an even blend of the stream and the weighted
    skip, not the plain U-Net's sum. The stack owns them (state-dict name stack.skip_gates). With
    SKIP_GATES_ENABLED=0 there are no gates and the mixer is UNetSkips exactly.
    """

    def __init__(self, h, stack):
        super().__init__(h, stack)
        self.gated = h.skip_gates_enabled
        if self.gated:
            stack.skip_gates = nn.Parameter(torch.zeros(self.num_skip, h.model_dim))  # (n_skip, d)

    def mix(self, stack, x, i, skip):  # x, skip (B, T, d); decoder position i
        scaled = stack.skip_weights[i].to(x.dtype) * skip
        if not self.gated:
            return x + scaled
        return torch.lerp(scaled, x, torch.sigmoid(stack.skip_gates[i].to(x.dtype)))


# ==================================================================================================
# plugins/muon_eq_r: MuonEq-R, row-equalised Muon (arXiv 2603.28254; PR #1217/#1260, records 04-03 to 04-27)
# Before the orthogonalisation, each output row of the Nesterov update is divided by its L2 norm.
# ==================================================================================================



class MuonRowEqualise:
    """muon_transform stage before_orthogonalise: G[i, row] /= max(||G[i, row]||_2, 1e-7) per output row.

    The stack holds each matrix in its wide orientation; a matrix transposed into it (rows > cols as a
    parameter) has its output rows as the stack's columns, so those are normalised over dim -2 instead."""

    def __init__(self):
        self.enabled = True
        self._masks = {}  # (transposed flags, device) -> (n, 1, 1) bool

    def setup(self, opt):
        self.enabled = bool(opt.h.muon_row_normalize) if opt.h is not None else True

    def before_orthogonalise(self, G, params, transposed, group, opt):
        if not self.enabled:
            return G
        if not any(transposed):  # (n, r, c): every output row is a row of the stack
            return G / G.norm(dim=-1, keepdim=True).clamp_min(1e-7)
        if all(transposed):  # every output row is a column of the stack
            return G / G.norm(dim=-2, keepdim=True).clamp_min(1e-7)
        key = (tuple(transposed), G.device)
        if key not in self._masks:
            self._masks[key] = torch.tensor(transposed, device=G.device).view(-1, 1, 1)
        norms = torch.where(self._masks[key], G.norm(dim=-2, keepdim=True), G.norm(dim=-1, keepdim=True))
        return G / norms.clamp_min(1e-7)


MUON_EQ_R = MuonRowEqualise()


# ==================================================================================================
# plugins/polar_ns: Polar Express Newton-Schulz (PR #1344; records 04-23 (PR #1787) and 04-27)
# Each iteration has its own (a, b, c), minimax-optimal for the iteration count, instead of Muon's fixed
# (3.4445, -4.7750, 2.0315).
# ==================================================================================================


POLAR_NS_COEFFS = (  # (a, b, c) of iteration 1..5; later iterations repeat the last (converged) tuple
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def polar_express_ns(G, steps, dtype=torch.bfloat16):
    """Orthogonalise a stack G (n, r, c), r <= c -> (n, r, c) bf16: X = G / (||G||_F + 1e-7) in bf16, then per
    iteration k: A = X X^T, X = a_k X + (b_k A + c_k A A) X (dtype: tests run it in fp32 too)."""
    X = G.to(dtype)
    X = X / (torch.linalg.vector_norm(X, dim=(1, 2), keepdim=True) + 1e-7)
    for k in range(steps):
        a, b, c = POLAR_NS_COEFFS[min(k, len(POLAR_NS_COEFFS) - 1)]
        A = X @ X.mT  # (n, r, r)
        X = a * X + (b * A + c * (A @ A)) @ X
    return X


class PolarExpress:
    """muon_transform stage orthogonalise (exclusive): Muon compiles it in place of its NS5 when COMPILE is on."""

    def orthogonalise(self, G, steps):
        return polar_express_ns(G, steps)


POLAR_NS = PolarExpress()


# ==================================================================================================
# plugins/weight_decay: decoupled weight decay (records 03-19 onward; EMBED_WD from 04-01; the taper from
# 2026-04-18_PR1626_CaseOps_Taper, PR #1729). Smaller weights compress better: the artifact's size tracks the
# weights' RMS (04-01 README: R^2 ~ 0.99).
# ==================================================================================================



def wd_run_fraction(step, clock_ms, h):
    """How far the run is: the agreed training clock over the cap less GPTQ_RESERVE_SECONDS, or the step over
    ITERATIONS without a cap (the record's training_frac)."""
    if h.max_wallclock_seconds > 0:
        return clock_ms / max(1000.0 * (h.max_wallclock_seconds - h.gptq_reserve_seconds), 1e-9)
    return step / max(h.iterations, 1)


def wd_taper_multiplier(frac, h):
    """1 until WD_TAPER_START_FRAC of the run, then linear to WD_TAPER_FINAL_MULT at its end."""
    start = h.wd_taper_start_frac
    if frac <= start or start >= 1.0:
        return 1.0
    progress = min(max((frac - start) / (1.0 - start), 0.0), 1.0)
    return 1.0 + (h.wd_taper_final_mult - 1.0) * progress


class MuonWeightDecay:
    """muon_transform: setup gives Adam's groups AdamW's decoupled decay (embedding EMBED_WD, the others
    ADAM_WD: p *= 1 - lr * wd inside Adam's step); before_update decays Muon's matrices that have a gradient,
    p *= 1 - lr * MUON_WD * taper, where lr already carries the schedule's multiplier."""

    def __init__(self):
        self.muon_wd, self.mult = 0.0, 1.0  # mult: the taper's multiplier, set by WeightDecayTaper

    def setup(self, opt):
        h = opt.h
        self.muon_wd, self.mult = h.muon_wd, 1.0
        if opt.adam is not None:
            if "decoupled_weight_decay" not in opt.adam.defaults:
                raise RunInputError(f"weight_decay: torch {torch.__version__}'s Adam has no decoupled_weight_decay "
                                    "(AdamW's decay); torch 2.7 or later is needed")
            for group in opt.adam.param_groups:
                group["weight_decay"] = h.embed_wd if group.get("name") == "embed" else h.adam_wd
                group["decoupled_weight_decay"] = True
        log0(f"weight_decay: muon:{h.muon_wd} embed:{h.embed_wd} adam:{h.adam_wd} "
             f"taper:{h.wd_taper_start_frac}->{h.wd_taper_final_mult}")

    def before_update(self, params, group, opt):
        wd = self.muon_wd * self.mult
        live = [p for p in params if p.grad is not None]
        if wd > 0 and live:
            torch._foreach_mul_(live, 1.0 - group["lr"] * wd)


MUON_WEIGHT_DECAY = MuonWeightDecay()


class WeightDecayTaper(RunEvents):
    """run_events: after timed step k, the taper multiplier for step k + 1 from the run fraction. Uncapped it is
    exactly step / ITERATIONS of the next step (the record's); under a cap the agreed clock read for step k,
    one step older than the record's (every rank reads the same, so weights stay equal across ranks)."""

    def train_start(self, run):
        MUON_WEIGHT_DECAY.mult = 1.0

    def step(self, model, step, clock_ms, lr_mul):
        MUON_WEIGHT_DECAY.mult = wd_taper_multiplier(wd_run_fraction(step, clock_ms, self.h), self.h)


# ==================================================================================================
# plugins/ema: an fp32 shadow of every weight, ema = d * ema + (1 - d) * w after each optimizer step,
# loaded into the model before export (EMA from the 03-20 XSA4 record, PR #287; d = 0.997)
# ==================================================================================================



class EmaAverager:
    """Exponential moving average of the whole state dict, kept in fp32 on the model's device.

    It starts from the weights the timed training starts from (after the compile warmup's reset); apply()
    copies the average into the model (cast back to each tensor's dtype), so the exported artifact and
    every later evaluation use the averaged weights.
    """

    def __init__(self, model, h):
        self.decay = h.ema_decay
        state = model.state_dict()
        self.names = [k for k, v in state.items() if v.is_floating_point()]
        self.shadow = [state[k].detach().float().clone() for k in self.names]

    @torch.no_grad()
    def update(self, model, step, lr_mul):
        state = model.state_dict()
        current = [state[k].detach().float() for k in self.names]  # a view for fp32 weights, a copy for bf16
        torch._foreach_mul_(self.shadow, self.decay)
        torch._foreach_add_(self.shadow, current, alpha=1.0 - self.decay)

    @torch.no_grad()
    def apply(self, model):
        state = model.state_dict()
        for name, avg in zip(self.names, self.shadow):
            state[name].copy_(avg)  # in place: cast to the parameter's dtype
        log0(f"ema: loaded the average of the weights (decay {self.decay})")


# ==================================================================================================
# plugins/warmdown_frac: constant LR, then a linear warmdown over the last WARMDOWN_FRAC of the run
# (of the wall-clock cap, or of ITERATIONS without one), floored at MIN_LR (WARMDOWN_FRAC: 04-01 record
# onward; MIN_LR: 04-23 onward); linear Muon momentum warmup as in the baseline
# ==================================================================================================



def run_fraction(step, elapsed_ms, h):
    """How far the run is, in [0, 1]: the training wall clock over the cap (less the export's reserve,
    GPTQ_RESERVE_SECONDS, where the core declares it), or the step over ITERATIONS without a cap. The clock is
    the one every rank agrees on (the slowest rank's), so every rank gets the same fraction."""
    if h.max_wallclock_seconds > 0:
        budget_ms = 1000.0 * (h.max_wallclock_seconds - getattr(h, "gptq_reserve_seconds", 0.0))
        return min(elapsed_ms / max(budget_ms, 1e-9), 1.0)
    return min(step / max(h.iterations, 1), 1.0)


def fraction_lr_multiplier(step, elapsed_ms, h):
    """1 until 1 - WARMDOWN_FRAC of the run, then max((1 - frac) / WARMDOWN_FRAC, MIN_LR)."""
    frac = run_fraction(step, elapsed_ms, h)
    if h.warmdown_frac <= 0 or frac < 1.0 - h.warmdown_frac:
        return 1.0
    return max((1.0 - frac) / h.warmdown_frac, h.min_lr)


def apply_fraction_schedule(optimizers, step, elapsed_ms, h):
    """lr = base_lr * multiplier for every group; groups with base_momentum (Muon's) warm their momentum up
    linearly from MUON_MOMENTUM_WARMUP_START over MUON_MOMENTUM_WARMUP_STEPS (the baseline's warmup)."""
    mul = fraction_lr_multiplier(step, elapsed_ms, h)
    steps = h.muon_momentum_warmup_steps
    ramp = min(step / steps, 1.0) if steps > 0 else 1.0
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * mul
            if "base_momentum" in group:
                group["momentum"] = (1 - ramp) * h.muon_momentum_warmup_start + ramp * group["base_momentum"]
    return mul


# ==================================================================================================
# plugins/sparse_attn_gate: SparseAttnGate (PR #1787, kept in PR #1855): y_h <- sigmoid(s * W x[:window])_h * y_h,
# the dense GatedAttn's gate read from 12 input dims instead of all d, W (H, window) zero-init
# ==================================================================================================




class SparseAttentionGate(nn.Module):
    """attention_post module: y (B, T, H, D) scaled per head by g = sigmoid(s * W x[:, :, :window]) (B, T, H).

    s = SPARSE_ATTN_GATE_SCALE, window = SPARSE_ATTN_GATE_WINDOW (12). W starts at zero (std
    SPARSE_ATTN_GATE_INIT_STD), so g = 0.5 at init: attention enters at half strength and W learns where to
    open or close it. A control tensor (fp32 in training and in the artifact, scalar Adam).
    """

    def __init__(self, h, layer):
        super().__init__()
        self.window, self.scale = min(h.sparse_attn_gate_window, h.model_dim), h.sparse_attn_gate_scale
        self.sparse_attn_gate_w = tag_param(nn.Parameter(torch.zeros(h.num_heads, self.window)), control=True, group="adam")
        if h.sparse_attn_gate_init_std > 0:
            nn.init.normal_(self.sparse_attn_gate_w, std=h.sparse_attn_gate_init_std)

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), x (B, T, d) the normed block input
        logits = F.linear(x[..., : self.window], self.sparse_attn_gate_w.to(x.dtype))  # (B, T, H)
        return y * torch.sigmoid(self.scale * logits).unsqueeze(-1).to(y.dtype)


# ==================================================================================================
# plugins/smear_gate: SmearGate v2 on the embedding before its norm (PR #1667), BOS-masked (PR #1851):
# e_t += lambda * sigmoid(W e_t[:window]) * e_{t-1} * (ids_t != BOS)
# ==================================================================================================



CONTROL_TENSOR_NAME_PATTERNS.extend(["smear_gate_w", "smear_lambda"])  # fp32 in training and in the artifact
SMEAR_BOS_ID = 1  # the shards' document start (core/data: each document is [BOS=1] + tokens)


class SmearGate(nn.Module):
    """e (B, T, d) -> e with a gated share of the previous position's embedding added to each position.

    The gate reads the first SMEAR_GATE_WINDOW dims of the position's own embedding; W (1, window) and the
    scalar lambda start at zero, so the module is the identity at init. Position 0 of a sequence has no
    previous token and is left alone; with SMEAR_BOS_MASK=1 a BOS (a new document) is left alone too, so the
    last token of document N never leaks into document N + 1 (in training and in every evaluation, TTT
    included: they all run this forward).
    """

    def __init__(self, h):
        super().__init__()
        self.window, self.bos_mask = min(h.smear_gate_window, h.model_dim), h.smear_bos_mask
        self.smear_gate_w = nn.Parameter(torch.zeros(1, self.window, dtype=torch.float32))
        self.smear_lambda = nn.Parameter(torch.zeros((), dtype=torch.float32))

    def forward(self, ids, e):
        cur, prev = e[:, 1:], e[:, :-1]  # (B, T-1, d): position t and t - 1
        gate = torch.sigmoid(F.linear(cur[..., : self.window], self.smear_gate_w.to(e.dtype)))  # (B, T-1, 1)
        gate = self.smear_lambda.to(e.dtype) * gate
        if self.bos_mask:
            gate = gate * (ids[:, 1:] != SMEAR_BOS_ID).unsqueeze(-1).to(e.dtype)
        return torch.cat((e[:, :1], cur + gate * prev), dim=1)


# ==================================================================================================
# plugins/ttt: legal score-first test-time training (PR #461 -> #549): the validation stream in chunks of
# TTT_CHUNK_TOKENS; chunk k's evaluation windows (eval_windows: plain, or sliding_window's) are scored
# under no_grad, their scores committed, and only then (unless k is the last chunk) every weight takes
# TTT_EPOCHS passes of SGD over chunk k's tokens
# ==================================================================================================






def ttt_chunks(spans, chunk_tokens):
    """Spans grouped by the chunk of their first scored target: [(k, spans of chunk k)] in stream order.
    A window whose first scored target is first + 1 belongs to chunk first // chunk_tokens, so every target
    it scores lies after every target that chunks before k train on."""
    chunks = {}
    for span in spans:
        chunks.setdefault(span[1] // chunk_tokens, []).append(span)
    return sorted(chunks.items())


def ttt_sequences(val_tokens, k, chunk_tokens, seq_len, last=None):
    """Chunk k's training sequences (n, seq_len + 1): targets k * C + 1 .. min((k + 1) * C, last), whole sequences
    only (last: the last target training may use; default the stream's last)."""
    C, T = chunk_tokens, seq_len
    end = min((k + 1) * C, val_tokens.numel() - 1 if last is None else last)
    n = max((end - k * C) // T, 0)
    if n == 0:
        return val_tokens.new_empty((0, T + 1))
    return val_tokens[k * C : k * C + n * T + 1].unfold(0, T + 1, T)  # (n, T + 1), views


def ttt_train_chunk(model, params, optimizer, sequences, ctx, epochs, batch_seqs, grad_clip):
    """`epochs` passes over this rank's share of the sequences, `batch_seqs` per step; gradients averaged over
    ranks and their norm clipped at grad_clip (0: off). Every rank takes the same number of steps (a rank whose
    share ran out adds a zero gradient)."""
    mine = rank_share(sequences, ctx)
    per_rank = -(-len(sequences) // ctx.world_size)
    steps = -(-per_rank // batch_seqs)
    model.train()
    for _ in range(epochs):
        for s in range(steps):
            batch = mine[s * batch_seqs : (s + 1) * batch_seqs].to(ctx.device, torch.int64)
            optimizer.zero_grad(set_to_none=False)
            if batch.numel():
                with bf16_autocast(ctx.device):
                    loss = model(batch[:, :-1], batch[:, 1:])
                loss.backward()
            if ctx.distributed:  # every rank steps, with the average over the ranks that had data
                for p in params:
                    dist.all_reduce(p.grad)
                    p.grad /= ctx.world_size
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
    model.eval()


def ttt_compile_warmup(model, params, h, ctx):
    """One forward and backward of a TTT-step shape on random tokens, never validation tokens, so that a
    compiled model compiles its TTT graph before the first chunk; no update, gradients zeroed."""
    synthetic = torch.randint(0, h.vocab_size, (h.ttt_batch_seqs, h.train_seq_len + 1), device=ctx.device)
    model.train()
    with bf16_autocast(ctx.device):
        model(synthetic[:, :-1], synthetic[:, 1:]).backward()
    for p in params:
        p.grad.zero_()
    model.eval()


def score_sgd_chunks(model, val_tokens, h, ctx):
    """TTT_MODE=sgd's final evaluation: chunk k's windows scored, then (unless k is the last) every weight trained
    on chunk k; the weights the evaluation found are restored at the end."""
    plan = eval_windows(val_tokens, h, ctx)
    ensure_positions(model, plan.window)
    was_training = model.training
    base = getattr(model, "_orig_mod", model)
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()}
    params = [p for p in base.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    ttt_compile_warmup(model, params, h, ctx)
    optimizer = torch.optim.SGD(params, lr=h.ttt_lr, momentum=h.ttt_momentum)
    chunks = ttt_chunks(plan.spans, h.ttt_chunk_tokens)
    parts, seen = [], -1  # seen: the last target any update so far trained on (the score ledger, core/data)
    model.eval()
    for index, (k, spans) in enumerate(chunks):
        with torch.no_grad(), bf16_autocast(ctx.device):  # score chunk k: committed before any update uses it
            for x, y, batch in window_batches(plan, rank_share(spans, ctx), val_tokens, ctx.device):
                nll = model(x, y, reduction="none").float().clone()  # kept: the model changes after this
                parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device, seen))
        sequences = ttt_sequences(val_tokens, k, h.ttt_chunk_tokens, h.train_seq_len)
        if index + 1 < len(chunks) and h.ttt_epochs > 0 and len(sequences):  # then train on it (never the last)
            for group in optimizer.param_groups:  # cosine over the chunks
                group["lr"] = h.ttt_lr * 0.5 * (1 + math.cos(math.pi * index / max(len(chunks) - 1, 1)))
            ttt_train_chunk(model, params, optimizer, sequences, ctx, h.ttt_epochs, h.ttt_batch_seqs, h.ttt_grad_clip)
            seen = k * h.ttt_chunk_tokens + sequences.size(0) * h.train_seq_len  # targets k * C + 1 .. this
    base.load_state_dict(saved)
    for p in params:
        p.grad = None
    model.train(was_training)
    return collect_scores(parts, ctx.device)


# ==================================================================================================
# plugins/ttt, per-document modes: LoRA adapters per document, scored chunk by chunk before each adapter step
# (TTT_MODE=lora), and the same with phased global SGD of every weight on the documents scored so far (phased);
# then the eval_adapter that picks the mode
# ==================================================================================================















# --------------------------------------------------------------------------------------------------
# TTT_MODE=lora (2026-03-17_LoRA_TTT; targets and scaling of PR #1530 / #1767): per-document rank-r LoRA adapters
# on the TTT_LORA_TARGETS modules, reset for each document; each document is scored in chunks of TTT_LORA_CHUNK
# targets, and after a chunk's NLL is committed its adapters take one Adam step on that chunk's loss. Documents
# start at BOS (id 1) and see no context from other documents. The base weights are frozen and untouched.
# --------------------------------------------------------------------------------------------------
TTT_BOS_ID = 1
if Hyperparameters.ttt_mode != "sgd" and Hyperparameters.ttt_lora_chunk > Hyperparameters.train_seq_len:
    print(f"error: TTT_LORA_CHUNK={Hyperparameters.ttt_lora_chunk}, TRAIN_SEQ_LEN={Hyperparameters.train_seq_len}: "
          "expected TTT_LORA_CHUNK <= TRAIN_SEQ_LEN (a chunk's targets fit in one row)", file=sys.stderr)
    sys.exit(2)


def ttt_documents(val_tokens):
    """[(start, end)]: document d reads tokens start .. end - 1 and scores targets start + 1 .. end (its last
    target is the next document's BOS, or the stream's last token). Starts: position 0 and every BOS."""
    bos = torch.nonzero(val_tokens[1:-1] == TTT_BOS_ID).flatten() + 1
    starts = [0, *bos.tolist()]
    return list(zip(starts, [*starts[1:], val_tokens.numel() - 1]))


class TTTLoRA(nn.Module):
    """One rank-r adapter per document row of a batch: delta(x) = (x A_b^T) B_b^T * scale, B zero at the start
    (the model is unchanged until the first step); scale = TTT_LORA_ALPHA / r (1 when the alpha is 0)."""

    def __init__(self, seeds, in_features, out_features, h, device):
        super().__init__()
        rank = h.ttt_lora_rank
        # each row's A drawn from its own document's seed: the same whichever batch or rank the document lands in
        a = torch.stack([torch.randn(rank, in_features, generator=torch.Generator().manual_seed(s)) for s in seeds])
        self.A = nn.Parameter((a / in_features ** 0.5).to(device))
        self.B = nn.Parameter(torch.zeros(len(seeds), out_features, rank, device=device))
        self.scale = h.ttt_lora_alpha / rank if h.ttt_lora_alpha > 0 else 1.0

    def delta(self, x):  # x (rows, T, in) -> (rows, T, out)
        return torch.bmm(torch.bmm(x, self.A.to(x.dtype).transpose(1, 2)), self.B.to(x.dtype).transpose(1, 2)) * self.scale

    def hook(self, module, inputs, out):  # forward hook: the adapted module's first input -> its output
        return out + self.delta(inputs[0])


def ttt_lora_sites(base, h):
    """[(name, module, in_features, out_features)] adapted for TTT_LORA_TARGETS: a target names modules by the end of
    their dotted name. A linear (c_q, c_k, c_v, attn.proj, mlp.fc, ...) adapts its own input -> output; `attn` and
    `mlp` adapt in parallel, from the sublayer's normed input to its output (the records' O and MLP adapters);
    `head` adapts the final normed hidden state -> the logits (module None: GPT.head is patched)."""
    d, sites = h.model_dim, []
    for target in [t for t in h.ttt_lora_targets.split(",") if t]:
        if target == "head":
            sites.append(("head", None, d, h.vocab_size))
            continue
        found = [(n, m) for n, m in base.named_modules() if n == target or n.endswith("." + target)]
        if not found:
            raise RunInputError(f"TTT_LORA_TARGETS={h.ttt_lora_targets}: {target!r} names no module of this "
                                "model, expected the end of a module name (c_q, c_k, c_v, attn, mlp, mlp.fc, ...) or head")
        sites += [(n, m, getattr(m, "in_features", d), getattr(m, "out_features", d)) for n, m in found]
    return sites


class TTTTargetsCheck(RunEvents):
    """The document modes' TTT_LORA_TARGETS checked against the model when it is made, so that a target naming no
    module is one line at start-up, not after training."""

    def __init__(self, model, h, ctx):
        super().__init__(model, h, ctx)
        if h.ttt_mode != "sgd":
            ttt_lora_sites(model, h)


def ttt_attach_adapters(base, sites, adapters):
    """Hooks the adapters in; returns the undo callbacks (hooks removed, GPT.head restored)."""
    undo = []
    for (_, module, _, _), adapter in zip(sites, adapters):
        if module is not None:
            undo.append(module.register_forward_hook(adapter.hook).remove)
            continue
        head = base.head  # the class's method: the tied or untied head of the final normed hidden state

        def head_with_adapter(hidden, head=head, adapter=adapter):
            return head(hidden) + adapter.delta(rms_norm(hidden))

        base.head = head_with_adapter  # an instance attribute: every path to the logits (fused loss too) takes it
        undo.append(lambda: delattr(base, "head"))
    return undo


def ttt_lora_rows(val_tokens, docs, c, h):
    """Chunk c of each document as one row of TRAIN_SEQ_LEN inputs: (x, y, scored mask, positions). The row's
    first token depends only on the document's start and c (never on where the document ends), so a target's
    context is fixed by the tokens before it. Rows of finished documents are all padding."""
    T, C = h.train_seq_len, h.ttt_lora_chunk
    x = torch.zeros(len(docs), T, dtype=torch.int64)
    y, scored, positions = torch.zeros_like(x), torch.zeros(len(docs), T, dtype=torch.bool), torch.zeros_like(x)
    for i, (start, end) in enumerate(docs):
        first, last = start + c * C + 1, min(start + (c + 1) * C, end)  # this chunk's targets
        if first > last:
            continue
        a = start + max(0, (c + 1) * C - T)  # the row's first input
        width = last - a
        x[i, :width], y[i, :width] = val_tokens[a:last], val_tokens[a + 1 : last + 1]
        positions[i, :width] = torch.arange(a + 1, last + 1)
        scored[i, first - a - 1 : width] = True
    return x, y, scored, positions


def score_lora_documents(model, val_tokens, docs, h, ctx, seen_before=-1):
    """Score-first per-document LoRA TTT over this rank's share of `docs`, TTT_LORA_BATCH documents per batch;
    returns (positions, nll, nbytes) ledger parts. seen_before: the last target the base weights learned from
    (phased mode's global SGD; -1: none)."""
    base = getattr(model, "_orig_mod", model)  # eager: the adapters are forward hooks
    sites = ttt_lora_sites(base, h)
    # longest first (a batch runs as many chunks as its longest document); rows never mix, so which documents share
    # a batch changes no score
    docs = rank_share(sorted(docs, key=lambda d: d[0] - d[1]), ctx)
    parts, C = [], h.ttt_lora_chunk
    for b in range(0, len(docs), h.ttt_lora_batch):
        batch = docs[b : b + h.ttt_lora_batch]
        batch = batch + [(0, 0)] * (h.ttt_lora_batch - len(batch))  # one shape; empty rows score nothing
        adapters = [TTTLoRA([h.seed * 7_919 + 104_729 * start + i for start, _ in batch], fan_in, fan_out, h, ctx.device)
                    for i, (_, _, fan_in, fan_out) in enumerate(sites)]
        undo = ttt_attach_adapters(base, sites, adapters)
        optimizer = torch.optim.AdamW([p for a in adapters for p in a.parameters()], lr=h.ttt_lora_lr,
                                      betas=(h.ttt_beta1, h.ttt_beta2), weight_decay=h.ttt_weight_decay)
        # per row: the last target its score's updates learned from (its adapter's, else the base weights')
        seen = torch.full((len(batch),), seen_before, dtype=torch.int64, device=ctx.device)
        try:
            for c in range(max(-(-(end - start) // C) for start, end in batch)):
                x, y, scored, positions = (t.to(ctx.device) for t in ttt_lora_rows(val_tokens, batch, c, h))
                with bf16_autocast(ctx.device):
                    nll = base(x, y, reduction="none").float()  # (rows, T)
                targets = positions.masked_fill(~scored, -1)  # (rows, T): the target each column scored, -1: none
                probe_rows(targets)  # golfc verify's probe: these rows' distributions
                parts.append(ledger_part(positions[scored], nll.detach()[scored].clone(),
                                         target_bytes(x, y, ctx.luts)[scored], seen[:, None].expand_as(x)[scored]))
                per_doc = (nll * scored).sum(1) / scored.sum(1).clamp(min=1)  # committed above; now adapt on it
                optimizer.zero_grad(set_to_none=True)
                per_doc.sum().backward()  # rows are independent: each adapter gets its own document's gradient
                optimizer.step()
                # ledger: each row's adapter has now learned from its document's targets up to this chunk's last
                seen = torch.where(scored.any(1), targets.amax(1), seen)
        finally:
            for fn in undo:
                fn()
    return parts


# --------------------------------------------------------------------------------------------------
# TTT_MODE=phased (PR #1610 -> PR #1626, 2026-04-27 PR #1855): per-document LoRA TTT as above, and at
# PHASED_TTT_NUM_PHASES boundaries spread over the first PHASED_TTT_PREFIX_DOCS documents every weight takes global
# SGD on all documents scored so far (cumulative), then scoring resumes on the updated weights.
# Phases follow the stream: documents 0 .. b - 1 are scored before the SGD at boundary b, and that SGD trains on
# targets 1 .. (document b - 1's last) only, so no score ever depends on a later token (C1). The records instead
# queue documents by length, longest first, so that their prefix is the longest documents and a document's
# phase depends on every document's length. Inside a phase golfc batches by length too (no score changes).
# --------------------------------------------------------------------------------------------------
def phased_segments(docs, h):
    """[(the documents scored in segment s, the last target the global SGD after it trains on, or None)]: segments
    end at the phase boundaries prefix * (p + 1) // phases (prefix = min(PHASED_TTT_PREFIX_DOCS, documents)); the
    last segment is the rest, with no SGD after it."""
    prefix, phases = min(h.phased_ttt_prefix_docs, len(docs)), h.phased_ttt_num_phases
    bounds = sorted({prefix * (p + 1) // phases for p in range(phases)} - {0, len(docs)})
    edges = [0, *bounds, len(docs)]
    return [(docs[edges[i] : edges[i + 1]], docs[edges[i + 1] - 1][1] if edges[i + 1] in bounds else None)
            for i in range(len(edges) - 1)]


def ttt_global_sgd(model, params, val_tokens, last, h, ctx):
    """Every weight in `params`: GLOBAL_TTT_EPOCHS of SGD (momentum GLOBAL_TTT_MOMENTUM, a fresh optimizer per phase
    as in the records) over targets 1 .. last in chunks of GLOBAL_TTT_CHUNK_TOKENS, the rate on a cosine over the
    chunks from GLOBAL_TTT_LR; returns the last target trained on."""
    for p in params:
        p.requires_grad_(True)
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.SGD(params, lr=h.global_ttt_lr, momentum=h.global_ttt_momentum)
    chunks, trained = -(-last // h.global_ttt_chunk_tokens), -1
    for k in range(chunks):
        sequences = ttt_sequences(val_tokens, k, h.global_ttt_chunk_tokens, h.train_seq_len, last)
        if not len(sequences):
            continue
        for group in optimizer.param_groups:
            group["lr"] = h.global_ttt_lr * 0.5 * (1 + math.cos(math.pi * k / max(chunks - 1, 1)))
        ttt_train_chunk(model, params, optimizer, sequences, ctx, h.global_ttt_epochs, h.global_ttt_batch_seqs,
                        h.global_ttt_grad_clip)
        trained = k * h.global_ttt_chunk_tokens + sequences.size(0) * h.train_seq_len
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    return trained


def score_phased_documents(model, val_tokens, params, h, ctx):
    """Phased TTT: each segment's documents scored with per-document LoRA, then global SGD on every document
    scored so far; returns ledger parts."""
    parts, seen, scored = [], -1, 0  # seen: the last target the base weights have learned from
    for phase, (docs, last) in enumerate(phased_segments(ttt_documents(val_tokens), h)):
        parts += score_lora_documents(model, val_tokens, docs, h, ctx, seen)
        scored += len(docs)
        if last is not None and h.global_ttt_epochs > 0:
            seen = max(seen, ttt_global_sgd(model, params, val_tokens, last, h, ctx))
            log0(f"ttt_phase:{phase + 1} scored_docs:{scored} global_sgd_targets:1..{seen}")
    return parts


def score_adapted_documents(model, val_tokens, h, ctx):
    """The lora and phased modes' final evaluation: base weights frozen while the adapters learn (phased: unfrozen
    only inside each global SGD), and the weights, flags and mode the evaluation found restored at the end."""
    base = getattr(model, "_orig_mod", model)
    was_training, flags = base.training, [(p, p.requires_grad) for p in base.parameters()]
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()} if h.ttt_mode == "phased" else None
    base.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        ensure_positions(model, h.train_seq_len)
        if h.ttt_mode == "phased":
            parts = score_phased_documents(model, val_tokens, [p for p, flag in flags if flag], h, ctx)
        else:
            parts = score_lora_documents(model, val_tokens, ttt_documents(val_tokens), h, ctx)
        return collect_scores(parts, ctx.device)
    finally:
        if saved is not None:
            base.load_state_dict(saved)
        for p, flag in flags:
            p.requires_grad_(flag)
        base.train(was_training)


def score_then_train(model, val_tokens, h, ctx, final=False):
    """The eval_adapter: plain scores of the planned windows, except in the final evaluation: score-first TTT between
    chunks (TTT_MODE=sgd), per-document LoRA TTT (lora) or LoRA with phased global SGD (phased). The weights the
    evaluation found are restored at the end (the artifact is what was exported, not the adapted model)."""
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    if h.ttt_mode == "sgd":
        return score_sgd_chunks(model, val_tokens, h, ctx)
    return score_adapted_documents(model, val_tokens, h, ctx)


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
# plugins/sdpa_attention/masks: the masked attention the window and varlen kernels share (one implementation).
# Inlined only into programs whose kernel requires it (Impl.requires), never into the baseline.
# A mask rule is a FlexAttention mask_mod, rule(b, h, q_idx, kv_idx) -> bool (True: query q_idx sees key kv_idx);
# each kernel plugin writes its rule once and gets from here, for the same rule:
#   masked SDPA:   rule_dense_mask (the explicit boolean mask) and masked_sdpa_attention (exact everywhere, computes
#                  the masked blocks too; the CPU path: FlexAttention has no backward there)
#   FlexAttention: rule_block_mask (its block mask, 128 x 128 blocks, masked-out blocks skipped; a kernel may cache
#                  it: window per shape, varlen per forward) and masked_flex_attention
# ==================================================================================================
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def rule_dense_mask(rule, T, device, rows=None):
    """The rule's boolean mask over T queries and T keys: (T, T) for a rule that ignores the row (rows=None),
    else (rows, 1, T, T), row b's mask from rule(b, ...) (broadcast over heads)."""
    q_idx = torch.arange(T, device=device)[:, None]
    kv_idx = torch.arange(T, device=device)[None, :]
    if rows is None:
        return rule(0, 0, q_idx, kv_idx)
    b = torch.arange(rows, device=device)[:, None, None]
    return rule(b, 0, q_idx, kv_idx)[:, None]


def masked_sdpa_attention(q, k, v, mask):
    """q (B, H, T, D), k and v (B, Hkv, T, D), mask bool (T, T) or (B, 1, T, T) -> y (B, H, T, D), scale 1/sqrt(D)."""
    if q.size(1) != k.size(1):  # GQA: the masked kernels do not all take enable_gqa
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def rule_block_mask(rule, T, device, rows=None):
    """FlexAttention's BlockMask of the rule over T queries and keys (rows=None: one mask for every row)."""
    return create_block_mask(rule, rows, None, T, T, device=device)


def masked_flex_attention(q, k, v, block_mask):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D) through FlexAttention; GQA without expanding k/v."""
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=q.size(1) != k.size(1))


# ==================================================================================================
# plugins/varlen: document-isolated attention (VarLen attention, PR #1530 -> every later record). Every row a
# loader or an evaluation window hands the model is a packed stream of BOS-delimited documents
# ([BOS=1] + tokens each); here position i attends to position j only when j <= i and both lie in the same
# document of that row, so no score ever sees another document, in training and in every evaluation alike.
# Two kernels compute the same thing, both from one rule (varlen_rule) through the shared attention pieces of
# plugins/sdpa_attention/masks:
#   flex: FlexAttention with a document block mask, built once per forward (fctx.cache) and read by every layer
#   sdpa: SDPA with the explicit block-diagonal causal mask (B, 1, T, T) (exact everywhere; the CPU path)
# ==================================================================================================










DOCUMENT_ISOLATED = True  # the claim the verifier's documents probe (L18) checks: no score sees another document
VARLEN_BOS_ID = 1  # the shards' document start (core/data: each document is [BOS=1] + tokens, no EOS)


def varlen_documents(ids):
    """ids (B, T) -> (B, T) int32: each position's document within its row, the number of BOS at or before it
    (0: the tail of a document that began in an earlier row or window)."""
    return torch.cumsum((ids == VARLEN_BOS_ID).to(torch.int32), dim=1)


def varlen_rule(docs):
    """The document rule as FlexAttention's mask_mod: in row b, query q sees key kv when kv <= q and both lie in
    the same document."""

    def document_causal(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (docs[b, q_idx] == docs[b, kv_idx])

    return document_causal


def varlen_dense_mask(docs):
    """(B, 1, T, T) bool, the block-diagonal causal mask: query i sees key j when j <= i and docs match."""
    return rule_dense_mask(varlen_rule(docs), docs.size(1), docs.device, rows=docs.size(0))


def varlen_block_mask(docs):
    """FlexAttention's BlockMask of the same rule (128 x 128 blocks: blocks across documents are skipped)."""
    return rule_block_mask(varlen_rule(docs), docs.size(1), docs.device, rows=docs.size(0))


VARLEN_KERNELS = {"flex": (varlen_block_mask, masked_flex_attention), "sdpa": (varlen_dense_mask, masked_sdpa_attention)}


def varlen_kernel_name(q, h):
    """VARLEN_KERNEL=auto: FlexAttention on CUDA inside a compiled graph (eager FlexAttention is a slow reference),
    else the masked SDPA."""
    if h.varlen_kernel != "auto":
        return h.varlen_kernel
    return "flex" if q.is_cuda and torch.compiler.is_compiling() else "sdpa"


def varlen_attention(q, k, v, h, layer, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D): causal attention inside each document of
    fctx.ids; the mask is built at the first layer of a forward and kept in fctx.cache for the others. Without a
    forward context (no ids) it is the plain causal kernel."""
    if fctx is None:
        return sdpa_attention(q, k, v, h, layer)
    name = varlen_kernel_name(q, h)
    build, kernel = VARLEN_KERNELS[name]
    key = f"varlen_{name}_mask"
    if key not in fctx.cache:
        fctx.cache[key] = build(varlen_documents(fctx.ids))
    return kernel(q, k, v, fctx.cache[key])


# ==================================================================================================
# plugins/fused_ce: the softcapped cross-entropy in one Triton kernel per direction (the fused softcapped-CE
# kernel of PR #1787, the 2026-04-23 record), filling the loss slot. For each row x (V,) of logits before the cap
# and its target t:
#   forward:  z = c * tanh(x / c) block by block over the vocabulary, an online log-sum-exp, loss = lse - z[t]
#   backward: dx = g * (softmax(z) - onehot(t)) * (1 - (z / c)^2), z recomputed from x, lse kept from the forward
# Neither the capped logits nor their fp32 copy nor an fp32 (N, V) gradient is written to memory (the eager path
# writes all three). CUDA training steps only; on the CPU and in every evaluation (no grad) the core's eager
# cross-entropy runs, op for op.
# ==================================================================================================
import importlib.util



FUSED_CE_HAS_TRITON = importlib.util.find_spec("triton") is not None
FUSED_CE_DEVICES = {"cuda"}  # device types whose training steps take the kernels (a test adds "cpu" under TRITON_INTERPRET)
FUSED_CE_MAX_BLOCK = 4096  # vocabulary columns per loop iteration of a row (sp8192: two iterations)


def fused_ce_config(vocab):
    """{BLOCK_V, num_warps} for rows of `vocab` logits: BLOCK_V the next power of two (at least 128), at most
    FUSED_CE_MAX_BLOCK; more warps for wider blocks (each thread holds BLOCK_V / (32 * num_warps) columns)."""
    if vocab < 1:
        raise RunInputError(f"fused_ce: a vocabulary of {vocab} logits, expected at least 1")
    block = min(max(1 << (vocab - 1).bit_length(), 128), FUSED_CE_MAX_BLOCK)
    return {"BLOCK_V": block, "num_warps": 4 if block <= 1024 else 8 if block <= 2048 else 16}


if FUSED_CE_HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def fused_ce_softcap(x, softcap):
        """c * tanh(x / c) in fp32 from exp(-2|u|) (no overflow for any x; CUDA and the interpreter alike). fp32
        whatever type c arrives in: under torch.compile, inductor passes a Python float as fp64."""
        u = (x / softcap).to(tl.float32)
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        return (softcap * tl.where(u < 0, -t, t)).to(tl.float32)

    @triton.jit
    def fused_ce_forward_kernel(x_ptr, t_ptr, loss_ptr, lse_ptr, stride_x, V, softcap, BLOCK_V: tl.constexpr):
        """One program per row: lse = logsumexp(softcap(x)) with a running max, loss = lse - softcap(x[t])."""
        row = tl.program_id(0).to(tl.int64)
        x_row = x_ptr + row * stride_x
        m = tl.full((), float("-inf"), tl.float32)  # running max of z
        s = tl.full((), 0.0, tl.float32)  # running sum of exp(z - m)
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            x = tl.load(x_row + cols, mask=cols < V, other=0.0).to(tl.float32)
            z = tl.where(cols < V, fused_ce_softcap(x, softcap), float("-inf"))
            m_new = tl.maximum(m, tl.max(z, axis=0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), axis=0)
            m = m_new
        lse = m + tl.log(s)
        target = tl.load(t_ptr + row)
        z_target = fused_ce_softcap(tl.load(x_row + target).to(tl.float32), softcap)
        tl.store(loss_ptr + row, lse - z_target)
        tl.store(lse_ptr + row, lse)

    @triton.jit
    def fused_ce_backward_kernel(x_ptr, t_ptr, lse_ptr, g_ptr, dx_ptr, stride_x, stride_dx, V, softcap,
                                 BLOCK_V: tl.constexpr):
        """One program per row: dx = g * (exp(z - lse) - [col == t]) * (1 - (z / c)^2), written in dx's dtype."""
        row = tl.program_id(0).to(tl.int64)
        x_row, dx_row = x_ptr + row * stride_x, dx_ptr + row * stride_dx
        target = tl.load(t_ptr + row)
        lse = tl.load(lse_ptr + row)
        g = tl.load(g_ptr + row)
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            x = tl.load(x_row + cols, mask=cols < V, other=0.0).to(tl.float32)
            z = fused_ce_softcap(x, softcap)
            p = tl.exp(z - lse)
            p = tl.where(cols == target, p - 1.0, p)
            zc = z / softcap
            dx = g * p * (1.0 - zc * zc)
            tl.store(dx_row + cols, dx.to(dx_ptr.dtype.element_ty), mask=cols < V)


def fused_ce_rows(x, targets):
    """The kernels' operands: x (N, V) with unit column stride, targets (N,) int64, both contiguous rows."""
    if x.dim() != 2 or targets.shape != (x.size(0),):
        raise RunInputError(f"fused_ce: logits {tuple(x.shape)} and targets {tuple(targets.shape)}, expected (N, V), (N,)")
    return (x if x.stride(1) == 1 else x.contiguous()), targets.contiguous().to(torch.int64)


if FUSED_CE_HAS_TRITON and not hasattr(torch.ops.golfc, "fused_softcap_ce"):  # once per process

    @torch.library.triton_op("golfc::fused_softcap_ce", mutates_args=())
    def fused_softcap_ce(x: torch.Tensor, targets: torch.Tensor, softcap: float) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, V) logits before the cap (any float dtype), targets (N,) -> (loss (N,) fp32, lse (N,) fp32)."""
        x, targets = fused_ce_rows(x, targets)
        loss = torch.empty(x.size(0), dtype=torch.float32, device=x.device)
        lse = torch.empty_like(loss)
        torch.library.wrap_triton(fused_ce_forward_kernel)[(x.size(0),)](
            x, targets, loss, lse, x.stride(0), x.size(1), softcap, **fused_ce_config(x.size(1)))
        return loss, lse

    @torch.library.triton_op("golfc::fused_softcap_ce_backward", mutates_args=())
    def fused_softcap_ce_backward(x: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, grad_loss: torch.Tensor,
                                  softcap: float) -> torch.Tensor:
        """d loss / d x (N, V) in x's dtype, for the per-row gradient grad_loss (N,)."""
        x, targets = fused_ce_rows(x, targets)
        dx = torch.empty_like(x)
        grad_loss = grad_loss.to(torch.float32).contiguous()
        torch.library.wrap_triton(fused_ce_backward_kernel)[(x.size(0),)](
            x, targets, lse, grad_loss, dx, x.stride(0), dx.stride(0), x.size(1), softcap,
            **fused_ce_config(x.size(1)))
        return dx

    def fused_ce_setup_context(ctx, inputs, output):
        x, targets, softcap = inputs
        ctx.save_for_backward(x, targets, output[1])
        ctx.softcap = softcap
        ctx.mark_non_differentiable(output[1])

    def fused_ce_backward(ctx, grad_loss, grad_lse_unused):
        x, targets, lse = ctx.saved_tensors
        return torch.ops.golfc.fused_softcap_ce_backward(x, targets, lse, grad_loss, ctx.softcap), None, None

    torch.library.register_autograd("golfc::fused_softcap_ce", fused_ce_backward, setup_context=fused_ce_setup_context)


def fused_ce_uses_kernel(hidden):
    """The kernels run on training steps (grad enabled) of a device type in FUSED_CE_DEVICES, when enabled."""
    return (Hyperparameters.fused_ce_enabled and FUSED_CE_HAS_TRITON and hidden.device.type in FUSED_CE_DEVICES
            and torch.is_grad_enabled())


def fused_softcap_loss(model, hidden, targets, reduction="mean"):
    """loss slot: hidden (B, T, d), targets (B, T) -> mean loss, or per-token NLL (B, T) fp32 ("none")."""
    if not fused_ce_uses_kernel(hidden):  # the core's own cross-entropy, op for op (bit-identical)
        logits = model.logits(hidden)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)
        return loss.view_as(targets) if reduction == "none" else loss
    z = model.head(hidden)  # (B, T, V) before the softcap, in the autocast dtype (bf16 in training)
    rows, _ = torch.ops.golfc.fused_softcap_ce(z.flatten(0, 1), targets.flatten(), float(model.logit_softcap))
    if reduction == "none":
        return rows.view_as(targets)
    return rows.sum() if reduction == "sum" else rows.mean()


# ==================================================================================================
# plugins/int6: the low-bit export quantizer (int6, and with other defaults int5 and mixed_quant). Symmetric
# per-row quantization of every large float tensor with bits chosen per tensor class (embedding, attention,
# MLP, other): q = round(w / s) in [-qmax, qmax], qmax = 2^(bits-1) - 1 (int6: 31, int5: 15), s = clip / qmax
# stored in fp16, clip = the row's 99.99984th percentile of |w| unless a quant stage chooses it; values are
# kept in int8 containers (the compressor absorbs the unused high bits). Small tensors stay float (control
# tensors fp32, the rest fp16). QUANT_STAGES (fp16_keep, gptq_lite, sdclip, gptq, lqer) act at named points.
# ==================================================================================================



INT6_LABEL = "int6"
LOWBIT_FORMAT = "golfc_lowbit_v1"  # written into every artifact; another format or version is refused
LOWBIT_QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs


def lowbit_class(name):
    """The tensor class that chooses the bits: embed (tok_emb, lm_head), attn, mlp or other."""
    if "tok_emb" in name or "lm_head" in name:
        return "embed"
    if ".attn." in name:
        return "attn"
    if ".mlp." in name:
        return "mlp"
    return "other"


def lowbit_bits(name, h):
    """QUANT_<CLASS>_BITS of the tensor's class."""
    return {"embed": h.quant_embed_bits, "attn": h.quant_attn_bits, "mlp": h.quant_mlp_bits,
            "other": h.quant_other_bits}[lowbit_class(name)]


def lowbit_qmax(bits):
    return (1 << (bits - 1)) - 1  # symmetric: int6 -> [-31, 31], int5 -> [-15, 15], int8 -> [-127, 127]


def lowbit_percentile_clip(w, q):
    """Per-row quantile q of |w| for w (rows, cols) fp32 -> (rows,), linear interpolation (torch.quantile in
    blocks of rows under its size limit)."""
    rows = max(1, LOWBIT_QUANTILE_MAX_NUMEL // max(w.size(1), 1))
    return torch.cat([torch.quantile(block.abs(), q, dim=1) for block in w.split(rows)])


def lowbit_scale(clip, qmax):
    """Row scales in fp16: clip / qmax, floored at 2^-24 (fp16's smallest step, so never 0): an all-zero row
    stays finite."""
    return (clip / qmax).clamp_min(2.0**-24).to(torch.float16)


def lowbit_round(w, scale, qmax):
    """Round to nearest with the stored (fp16) scales: int8 (rows, cols) in [-qmax, qmax]."""
    return torch.round(w / scale.float()[:, None]).clamp(-qmax, qmax).to(torch.int8)


def lowbit_stage_methods(method):
    return [getattr(stage, method) for stage in QUANT_STAGES if getattr(stage, method, None) is not None]


def lowbit_hessian(name):
    """H (cols, cols) of a matrix's inputs from the first stage that collected Hessians (gptq), or None."""
    return next((H for H in (fn(name) for fn in lowbit_stage_methods("hessian")) if H is not None), None)


def lowbit_quantize_matrix(name, w, bits, h):
    """w (rows, cols) fp32 -> (q int8 (rows, cols), scale fp16 (rows,)): the first stage that gives a clip
    (sdclip, gptq_lite) or a rounding (gptq) decides it, else the percentile clip and round to nearest."""
    qmax = lowbit_qmax(bits)
    clip = next((c for c in (fn(name, w, qmax, h) for fn in lowbit_stage_methods("clip")) if c is not None), None)
    if clip is None:
        clip = lowbit_percentile_clip(w, h.quant_clip_percentile / 100.0)
    scale = lowbit_scale(clip, qmax)
    q = next((r for r in (fn(name, w, scale, qmax, h) for fn in lowbit_stage_methods("round")) if r is not None), None)
    return (q if q is not None else lowbit_round(w, scale, qmax)), scale


def lowbit_as_matrix(t):
    """A tensor as the matrix its rows are quantized in: (dim0, rest) for 2-D and more, (1, n) for a vector."""
    return t.float().reshape(t.shape[0], -1) if t.ndim >= 2 else t.float().reshape(1, -1)


def lowbit_plan(name, t, h):
    """Bits for one float tensor (16: kept in fp16, 32: control tensor kept exact)."""
    if is_control_tensor(name):  # a control tag, else the name patterns
        return 32
    bits = lowbit_bits(name, h) if t.numel() > h.quant_keep_float_numel else 16
    for fn in lowbit_stage_methods("plan"):
        bits = fn(name, t, bits, h)
    return bits


def lowbit_payload_bytes(obj):
    """Bytes of every tensor the artifact stores."""
    def size(x):
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        return sum(size(v) for v in x.values()) if isinstance(x, dict) else 0
    return sum(size(obj[k]) for k in ("q", "scale", "keep", "lowrank"))


def quantize_model_lowbit(model, state, h, ctx, calibration):
    """The quantizer slot: (object to torch.save, stats). Stages prepare first (GPTQ reads its calibration
    batches there), then every tensor is planned and stored, then stages finish (LQER)."""
    for fn in lowbit_stage_methods("prepare"):
        fn(model, state, h, ctx, calibration)
    obj = {"__quant_format__": LOWBIT_FORMAT, "q": {}, "scale": {}, "bits": {}, "shapes": {}, "dtypes": {},
           "keep": {}, "keep_dtypes": {}, "lowrank": {}}
    stats = {"param_count": 0, "payload_bytes": 0, "baseline_tensor_bytes": 0, "num_quantized": 0}
    for name, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        stats["param_count"] += t.numel()
        stats["baseline_tensor_bytes"] += t.numel() * t.element_size()
        if not t.is_floating_point():
            obj["keep"][name] = t
            continue
        bits = lowbit_plan(name, t, h)
        dtype = str(t.dtype).removeprefix("torch.")
        if bits >= 16:
            obj["keep"][name] = t.float() if bits == 32 else t.to(torch.float16)
            obj["keep_dtypes"][name] = dtype
            continue
        obj["q"][name], obj["scale"][name] = lowbit_quantize_matrix(name, lowbit_as_matrix(t), bits, h)
        obj["bits"][name], obj["shapes"][name], obj["dtypes"][name] = bits, tuple(t.shape), dtype
        stats["num_quantized"] += 1
    for fn in lowbit_stage_methods("finish"):
        fn(obj, state, h)
    stats["payload_bytes"] = lowbit_payload_bytes(obj)
    return obj, stats


def lowbit_lowrank_dense(entry):
    """A low-rank correction (LQER) as a dense (rows, cols) fp32 matrix: (A_q a_s) @ (B_q b_s), where B is stored
    flattened in groups of len(B) / len(b_scale), one fp16 scale each."""
    a = entry["a"].float() * entry["a_scale"].float()
    r, cols = entry["b_shape"]
    b = entry["b"].float().view(entry["b_scale"].numel(), -1) * entry["b_scale"].float()[:, None]
    return a @ b.reshape(-1)[: r * cols].view(r, cols)


def lowbit_dequantize_matrix(obj, name):
    """One stored matrix back as fp32 (rows, cols), its low-rank correction added."""
    w = obj["q"][name].float() * obj["scale"][name].float()[:, None]
    if name in obj["lowrank"]:
        w = w + lowbit_lowrank_dense(obj["lowrank"][name])
    return w


def dequantize_state_dict_lowbit(obj):
    """Inverse of quantize_model_lowbit: every tensor back in its shape and dtype (CPU). An artifact of another
    format or version is one line (exit 2)."""
    found = obj.get("__quant_format__") if isinstance(obj, dict) else type(obj).__name__
    if found != LOWBIT_FORMAT:
        raise RunInputError(f"artifact format {found!r}: this program reads {LOWBIT_FORMAT!r} artifacts")
    out = {}
    for name in obj["q"]:
        w = lowbit_dequantize_matrix(obj, name)
        out[name] = w.reshape(obj["shapes"][name]).to(getattr(torch, obj["dtypes"][name])).contiguous()
    for name, t in obj["keep"].items():
        dtype = obj["keep_dtypes"].get(name)
        out[name] = t.to(getattr(torch, dtype)).contiguous() if dtype else t
    return out


# ==================================================================================================
# plugins/gptq: full-Hessian GPTQ (Frantar et al. 2022) as a quant stage of the low-bit engine.
# prepare: forward GPTQ_CALIB_BATCHES calibration batches through the trained model and accumulate, for every
#   CastedLinear, H = sum X^T X of its inputs (the tied embedding: of the final-norm output that the head reads),
#   summed over ranks; the calibration then ends (its clock is logged by core/train).
# round: per matrix, with the row scales already chosen (percentile clip, or sdclip / gptq_lite):
#   damp = GPTQ_DAMP * mean(diag H); dead columns (diag 0) zeroed; columns in descending diag(H) order;
#   U = upper Cholesky factor of H^-1; blocks of GPTQ_BLOCK_SIZE columns; each column rounded, its error
#   e = (w - q s) / U[j, j] fed back into the later columns: W[:, j:] -= e U[j, j:].
# ==================================================================================================




def gptq_collect_hessians(model, h, ctx, calibration):
    """{state-dict name: H (in, in) fp32 on ctx.device} over the calibration batches, summed over ranks."""
    hessians, hooks = {}, []

    def accumulate(name, x):
        x = x.detach().reshape(-1, x.size(-1)).float()
        if name not in hessians:
            hessians[name] = torch.zeros(x.size(1), x.size(1), device=x.device)
        hessians[name].addmm_(x.T, x)

    for name, module in model.named_modules():
        if isinstance(module, CastedLinear):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, key=f"{name}.weight": accumulate(key, args[0])))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), bf16_autocast(ctx.device):
            for x in calibration.batches(h.gptq_calib_batches):
                hidden = model.hidden(x)
                if model.lm_head is None:  # the tied head multiplies the final-norm output with tok_emb
                    accumulate("tok_emb.weight", rms_norm(hidden))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if ctx.distributed:
        for name in sorted(hessians):
            dist.all_reduce(hessians[name])
    return hessians


def gptq_round(w, scale, qmax, H, block_size=128, damp=0.01):
    """w (rows, cols) fp32, scale (rows,) fp16, H (cols, cols) -> q int8 (rows, cols) in [-qmax, qmax] (CPU)."""
    device = H.device
    W, H = w.to(device=device, dtype=torch.float32).clone(), H.to(torch.float32).clone()
    s = scale.to(device=device, dtype=torch.float32)
    cols = W.size(1)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H.diagonal().add_(damp * torch.diag(H).mean())
    perm = torch.argsort(torch.diag(H), descending=True)
    W, H = W[:, perm], H[perm][:, perm]
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1, E1, U1 = W[:, i1:i2].clone(), torch.zeros_like(W[:, i1:i2]), U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            q = torch.clamp(torch.round(W1[:, i] / s), -qmax, qmax)
            Q[:, i1 + i] = q
            err = (W1[:, i] - q * s) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            E1[:, i] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return Q[:, torch.argsort(perm)].to(torch.int8).cpu()


class GptqStage:
    """prepare collects the Hessians; round rounds every matrix that has one (the others: round to nearest)."""

    def __init__(self):
        self.hessians = {}

    def prepare(self, model, state, h, ctx, calibration):
        t0 = time.perf_counter()
        self.hessians = gptq_collect_hessians(model, h, ctx, calibration)
        calibration.finished()
        log0(f"gptq: hessians of {len(self.hessians)} matrices in {time.perf_counter() - t0:.2f}s")

    def hessian(self, name):
        """The collected H of a matrix (shared with other stages: sdclip's Hessian-aware clip), or None."""
        return self.hessians.get(name)

    def round(self, name, w, scale, qmax, h):
        H = self.hessians.get(name)
        if H is None or H.size(0) != w.size(1):
            return None
        return gptq_round(w, scale, qmax, H, h.gptq_block_size, h.gptq_damp)


GPTQ_STAGE = GptqStage()


# ==================================================================================================
# plugins/sdclip: a quant stage choosing each row's clip as k * std(row), k per tensor class (SDClip,
# PR #1394): scale s_i = k * std(w_i) / qmax. A larger k keeps the tails and spends fewer levels on the bulk,
# so the values have lower entropy and compress smaller.
# Hessian-aware form (PR #1412), HESSIAN_CLIP_LAMBDA = lambda > 0, with gptq's Hessians:
#   d = diag(H) (dead columns 1, plus GPTQ_DAMP * mean), c_j = d_j / mean(d)   column importance
#   r_i = mean_j |w_ij| c_j, normalised to mean 1                                 row importance
#   clip_i = k * std(w_i) * (1 + lambda * (r_i - 1))
# ==================================================================================================


def sdclip_sigmas(name, h):
    """k of the tensor's class (MLP and attention fall back to SDCLIP_MATRIX_SIGMAS when 0)."""
    cls = lowbit_class(name)
    if cls == "embed":
        return h.sdclip_embed_sigmas
    k = {"mlp": h.sdclip_mlp_sigmas, "attn": h.sdclip_attn_sigmas}.get(cls, 0.0)
    return k if k > 0 else h.sdclip_matrix_sigmas


def sdclip_row_importance(w, H, damp):
    """w (rows, cols), H (cols, cols) -> (rows,) mean 1: how much each row's weights meet high-curvature inputs."""
    d = torch.diag(H).float().clone()
    d[d == 0] = 1.0
    d = d + damp * d.mean()
    r = (w.abs() * (d / d.mean())[None, :]).mean(dim=1)
    return r / r.mean()


class SdClipStage:
    def prepare(self, model, state, h, ctx, calibration):
        if h.hessian_clip_lambda > 0 and not lowbit_stage_methods("hessian"):
            raise ValueError(f"HESSIAN_CLIP_LAMBDA={h.hessian_clip_lambda} needs Hessians: add the gptq plugin "
                             "(or set HESSIAN_CLIP_LAMBDA=0)")

    def clip(self, name, w, qmax, h):
        """(rows,) clip: k * the row's standard deviation (population), (no search), modulated by row importance
        when HESSIAN_CLIP_LAMBDA > 0 and the matrix has a Hessian."""
        clip = sdclip_sigmas(name, h) * w.float().std(dim=1, unbiased=False)
        H = lowbit_hessian(name) if h.hessian_clip_lambda > 0 else None
        if H is None or H.size(0) != w.size(1):
            return clip
        r = sdclip_row_importance(w.float(), H.to(w.device), getattr(h, "gptq_damp", 0.01))
        return clip * (1.0 + h.hessian_clip_lambda * (r - 1.0))


SDCLIP_STAGE = SdClipStage()
"""sdclip: the row clip is k standard deviations of the row (no search), k per tensor class."""


# ==================================================================================================
# plugins/lqer: a quant stage that, after every matrix is quantized, corrects the LQER_TOP_K matrices with the
# largest error E = W - Q s (Frobenius norm) by a rank-r SVD: E ~ A B with A = U_r S_r (rows, r) and
# B = V_r^T (r, cols). Asymmetric packing (PR #1851): A in int2 [-2, 1] with one fp16 scale max|A| / 1.5; B
# flattened in groups of LQER_GROUP, int4 [-8, 7], one fp16 scale max|g| / 7.5 per group. The engine's
# dequantizer adds A_q a_s @ B_q b_s back (obj["lowrank"]).
# ==================================================================================================


def lqer_pack(E, rank, group):
    """E (rows, cols) fp32 -> the engine's low-rank entry for its rank-`rank` SVD approximation."""
    U, S, Vh = torch.linalg.svd(E, full_matrices=False)
    r = min(rank, S.numel())
    A, B = U[:, :r] * S[:r], Vh[:r]
    a_scale = (A.abs().max() / 1.5).clamp_min(1e-8).to(torch.float16)
    a = torch.clamp(torch.round(A / a_scale.float()), -2, 1).to(torch.int8)
    flat = B.reshape(-1)
    flat = torch.cat([flat, flat.new_zeros((-flat.numel()) % group)]).view(-1, group)
    b_scale = (flat.abs().amax(dim=1) / 7.5).clamp_min(1e-8).to(torch.float16)
    b = torch.clamp(torch.round(flat / b_scale.float()[:, None]), -8, 7).to(torch.int8).reshape(-1)
    return {"a": a.contiguous(), "a_scale": a_scale, "b": b.contiguous(), "b_scale": b_scale, "b_shape": (r, B.size(1))}


class LqerStage:
    def finish(self, obj, state, h):
        """Add a correction to the LQER_TOP_K quantized matrices with the largest ||W - Q s||_F."""
        errors = []
        for name in obj["q"]:
            w = state[name].detach().to("cpu").float().reshape(obj["q"][name].shape)
            errors.append((float((w - lowbit_dequantize_matrix(obj, name)).norm()), name))
        for _, name in sorted(errors, reverse=True)[: h.lqer_top_k]:
            w = state[name].detach().to("cpu").float().reshape(obj["q"][name].shape)
            E = w - lowbit_dequantize_matrix(obj, name)
            obj["lowrank"][name] = lqer_pack(E, h.lqer_rank, h.lqer_group)
            after = float((w - lowbit_dequantize_matrix(obj, name)).norm())
            log0(f"lqer: {name} rank {obj['lowrank'][name]['b_shape'][0]} error {float(E.norm()):.4f} -> {after:.4f}")


LQER_STAGE = LqerStage()


# ==================================================================================================
# plugins/pergroup: artifact compression by tensor role (tricks.md row 36; the 04-27 record's COMPRESSOR=pergroup,
# PR #1855, with lzma / zstd / brotli in place of its lrzip). Every tensor storage is cut out of the torch.save zip;
# the int8 matrices are grouped by role across layers (all c_q, all fc, ...), rows optionally put in greedy L1
# order (permutation stored) and transposed; the other tensors follow by role, byte-shuffled by element size; then
# the rest of the blob. Large groups are streams of their own, each compressed by PERGROUP_BACKEND (auto: the
# smallest installed). Decompression puts every byte back: the exact torch.save blob, whatever the quantizer wrote.
# Blob: b"PGRP" + version + stream count + per stream (codec id, u32 length, compressed bytes).
# ==================================================================================================
import importlib
import json
import lzma
import pickle
import re
import struct
import zipfile



PERGROUP_LABEL = "pergroup"
PERGROUP_MAGIC = b"PGRP"
PERGROUP_VERSION = 1  # written into every blob; another version is refused when read back
PERGROUP_PACKAGES = {"zstd": "zstandard", "brotli": "brotli"}  # optional backends -> their Python package
PERGROUP_CODECS = ("stored", "lzma", "zstd", "brotli")  # codec id = index; stored: the bytes as they are
PERGROUP_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]  # raw LZMA2: no xz container
PERGROUP_SEG_KEYS = ("start", "length", "group", "rows", "cols", "transposed", "perm")  # a segment in the metadata
PERGROUP_STORAGE_BYTES = {"Byte": 1, "Char": 1, "Bool": 1, "Short": 2, "Half": 2, "BFloat16": 2, "Int": 4,
                          "Float": 4, "Long": 8, "Double": 8}  # torch.<X>Storage -> element bytes


def pergroup_module(backend):
    """The Python module of an optional backend, or None when it is not installed."""
    try:
        return importlib.import_module(PERGROUP_PACKAGES[backend])
    except ImportError:
        return None


def pergroup_available(choice):
    """The backends PERGROUP_BACKEND allows that are installed (auto: every one of lzma, zstd, brotli found)."""
    wanted = ("lzma", "zstd", "brotli") if choice == "auto" else (choice,)
    return [b for b in wanted if b == "lzma" or pergroup_module(b) is not None]


if __name__ == "__main__" and not pergroup_available(Hyperparameters.pergroup_backend):
    pkg = PERGROUP_PACKAGES[Hyperparameters.pergroup_backend]  # one line before anything runs
    print(f"error: the pergroup compressor with PERGROUP_BACKEND={Hyperparameters.pergroup_backend} needs the Python "
          f"package '{pkg}' (pip install {pkg})", file=sys.stderr)
    sys.exit(2)


def pergroup_encode(codec, data):
    if codec == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=PERGROUP_LZMA_FILTERS)
    if codec == "zstd":
        return pergroup_module("zstd").ZstdCompressor(level=22).compress(data)
    if codec == "brotli":
        return pergroup_module("brotli").compress(data, quality=11, lgwin=24)
    return data


def pergroup_decode(codec, data):
    if codec == "lzma":
        return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=PERGROUP_LZMA_FILTERS)
    if codec in ("zstd", "brotli"):
        module = pergroup_module(codec)
        if module is None:
            pkg = PERGROUP_PACKAGES[codec]
            raise RuntimeError(f"this pergroup artifact needs the Python package '{pkg}' (pip install {pkg})")
        return module.ZstdDecompressor().decompress(data) if codec == "zstd" else module.decompress(data)
    return data


# ---- reading a torch.save blob: where each storage lies, and which tensor (path, shape) it holds -------------
class PergroupUnpickler(pickle.Unpickler):
    """Reads torch.save's data.pkl without building tensors: a tensor becomes a dict (storage key, element bytes,
    offset, shape, stride); every other global is the real one."""

    def persistent_load(self, pid):  # ('storage', storage type, key, location, numel)
        return {"key": str(pid[2]), "esize": PERGROUP_STORAGE_BYTES.get(str(pid[1]).removesuffix("Storage"), 1)}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, shape, stride, *rest: {**storage, "offset": offset, "shape": tuple(shape),
                                                                  "stride": tuple(stride)}
        if module == "torch" and name.endswith("Storage"):
            return name
        return super().find_class(module, name)


def pergroup_tensor_refs(obj, path=()):
    """[(path, ref)] of every tensor in the unpickled object (dicts, lists and tuples walked)."""
    if isinstance(obj, dict) and "key" in obj and "stride" in obj and "esize" in obj:
        return [(path, obj)]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    return [ref for k, v in items for ref in pergroup_tensor_refs(v, (*path, str(k)))]


def pergroup_segments(raw):
    """[{start, length, role, esize, rows, cols}] of the storages of a torch.save blob, in blob order: role is the
    tensor's path with layer numbers starred ("q/stack.blocks.*.attn.c_q.weight"); rows and cols are set for a
    2-D int8 tensor that fills its storage. Not a torch.save zip (or one this cannot read): no segments."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
        pkl = next(i for i in infos if i.filename.endswith("/data.pkl"))
        refs = pergroup_tensor_refs(PergroupUnpickler(io.BytesIO(zf.read(pkl))).load())
    except Exception:  # anything but a readable torch.save zip is stored as one opaque stream
        return []
    by_key = {}
    for path, ref in refs:
        by_key.setdefault(ref["key"], (path, ref))
    segs = []
    for info in infos:
        head, _, key = info.filename.rpartition("/data/")
        if not head or "/" in key or info.compress_type != zipfile.ZIP_STORED or info.file_size == 0:
            continue
        if raw[info.header_offset:info.header_offset + 4] != b"PK\x03\x04":
            return []
        name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
        seg = {"start": info.header_offset + 30 + name_len + extra_len, "length": info.file_size, "role": "?",
               "esize": 1, "rows": 0, "cols": 0}
        if key in by_key:
            path, ref = by_key[key]
            seg["role"] = "/".join(re.sub(r"\.\d+\.", ".*.", p) for p in path)
            seg["esize"] = ref["esize"] if info.file_size % ref["esize"] == 0 else 1
            shape, stride = ref["shape"], ref["stride"]
            if (ref["esize"] == 1 and len(shape) == 2 and ref["offset"] == 0 and stride == (shape[1], 1)
                    and shape[0] * shape[1] == info.file_size and shape[0] > 1):
                seg["rows"], seg["cols"] = shape
        segs.append(seg)
    segs.sort(key=lambda s: s["start"])
    ends = [s["start"] + s["length"] for s in segs]
    if any(e > s["start"] for e, s in zip(ends, segs[1:])) or (ends and ends[-1] > len(raw)):
        return []
    return segs


# ---- the transforms: row order, transpose, byte shuffle -------------------------------------------------------
def pergroup_greedy_order(q):
    """Row order of an int8 matrix (rows, cols): start at row 0, then always the unused row nearest in L1 to the
    last one taken (ties: the lowest index). Deterministic; O(rows^2 cols)."""
    x = q.astype(np.int16)
    n = x.shape[0]
    left = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    cur = 0
    for i in range(n):
        order[i], left[cur] = cur, False
        if i + 1 < n:
            idx = np.flatnonzero(left)
            cur = int(idx[np.argmin(np.abs(x[idx] - x[cur]).sum(axis=1))])
    return order


def pergroup_shuffle(data, stride):
    """Bytes regrouped by position modulo stride: data[0::s] + data[1::s] + ... (len(data) a multiple of s)."""
    return data if stride <= 1 else np.frombuffer(data, np.uint8).reshape(-1, stride).T.tobytes()


def pergroup_unshuffle(data, stride):
    return data if stride <= 1 else np.frombuffer(data, np.uint8).reshape(stride, -1).T.tobytes()


def pergroup_reorders(seg, h):
    """Whether this segment's rows may be reordered: an int8 matrix whose role matches PERGROUP_REORDER_PATTERNS."""
    patterns = [p for p in h.pergroup_reorder_patterns.split(",") if p]
    return h.pergroup_reorder != "none" and seg["rows"] > 1 and any(p in seg["role"] for p in patterns)


def pergroup_drop_unpaid(ordered, plain, segs, h):
    """PERGROUP_REORDER=auto: per group, the reordered forms are dropped unless they compress (the last backend
    allowed: brotli, zstd, lzma) smaller than the plain forms by more than their permutations (2 bytes a row)."""
    codec = pergroup_available(h.pergroup_backend)[-1]
    for g in sorted({segs[i]["group"] for i in ordered}):
        idx = [i for i in ordered if segs[i]["group"] == g]
        paid = len(pergroup_encode(codec, b"".join(ordered[i][0] for i in idx))) + sum(2 * segs[i]["rows"] for i in idx)
        if paid >= len(pergroup_encode(codec, b"".join(plain[i][0] for i in idx))):
            for i in idx:
                del ordered[i]


def pergroup_forward(data, seg, h, reorder):
    """One storage's bytes as they are stored -> (bytes in the group stream, row permutation or None)."""
    if not seg["rows"]:
        return data, None
    q = np.frombuffer(data, np.int8).reshape(seg["rows"], seg["cols"])
    perm = pergroup_greedy_order(q) if reorder else None
    if perm is not None:
        q = q[perm]
    return (np.ascontiguousarray(q.T).tobytes() if h.pergroup_transpose else q.tobytes()), perm


def pergroup_backward(data, seg, perm):
    """Inverse of pergroup_forward."""
    if not seg["rows"]:
        return data
    rows, cols = seg["rows"], seg["cols"]
    a = np.frombuffer(data, np.int8)
    q = a.reshape(cols, rows).T if seg["transposed"] else a.reshape(rows, cols)
    if perm is not None:
        back = np.empty_like(q)
        back[perm] = q
        q = back
    return np.ascontiguousarray(q).tobytes()


# ---- the blob ------------------------------------------------------------------------------------------------
def pergroup_pack_streams(streams, choice):
    """Each stream compressed by the smallest of the allowed backends (an empty stream stays stored)."""
    out = [PERGROUP_MAGIC, bytes([PERGROUP_VERSION, len(streams)])]
    for data in streams:
        candidates = [(pergroup_encode(c, data), c) for c in pergroup_available(choice)] if data else []
        blob, codec = min(candidates, key=lambda t: len(t[0]), default=(data, "stored"))
        out += [bytes([PERGROUP_CODECS.index(codec)]), struct.pack("<I", len(blob)), blob]
    return b"".join(out)


def pergroup_unpack_streams(blob):
    if blob[:4] != PERGROUP_MAGIC:
        raise ValueError("not a pergroup blob (no PGRP magic)")
    if blob[4] != PERGROUP_VERSION:
        raise ValueError(f"pergroup format version {blob[4]}: this program reads version {PERGROUP_VERSION}")
    pos, streams = 6, []
    for _ in range(blob[5]):
        codec, size = blob[pos], struct.unpack_from("<I", blob, pos + 1)[0]
        if codec >= len(PERGROUP_CODECS) or pos + 5 + size > len(blob):
            raise ValueError("truncated or corrupt pergroup blob")
        streams.append(pergroup_decode(PERGROUP_CODECS[codec], blob[pos + 5:pos + 5 + size]))
        pos += 5 + size
    return streams


def pergroup_compress(raw):
    """torch.save bytes -> PGRP blob. Stream 0: u32 meta length, meta (JSON: segments and groups), the bytes
    outside every storage, the row permutations, then each group too small for a stream of its own; streams 1..:
    the groups of at least PERGROUP_STREAM_BYTES, values before the rest."""
    h = Hyperparameters
    segs = pergroup_segments(raw)
    roles = sorted({(0 if s["rows"] else 1, s["role"], s["esize"]) for s in segs})  # int8 matrices first
    group_of = {r: i for i, r in enumerate(roles)}
    for s in segs:
        s["group"] = group_of[(0 if s["rows"] else 1, s["role"], s["esize"])]
        s["transposed"] = int(bool(s["rows"]) and h.pergroup_transpose)
    plain = [pergroup_forward(raw[s["start"]:s["start"] + s["length"]], s, h, False) for s in segs]
    ordered = {i: pergroup_forward(raw[s["start"]:s["start"] + s["length"]], s, h, True)
               for i, s in enumerate(segs) if pergroup_reorders(s, h)}
    if h.pergroup_reorder == "auto":
        pergroup_drop_unpaid(ordered, plain, segs, h)
    blocks, perms, skeleton, at = [[] for _ in roles], [], [], 0
    for i, s in enumerate(segs):
        data, perm = ordered.get(i, plain[i])
        s["perm"] = int(perm is not None)
        if perm is not None:
            perms.append(perm.astype(np.uint16 if s["rows"] <= 65536 else np.uint32).tobytes())
        blocks[s["group"]].append(data)
        skeleton.append(raw[at:s["start"]])
        at = s["start"] + s["length"]
    skeleton.append(raw[at:])
    groups = [pergroup_shuffle(b"".join(b), role[2] if h.pergroup_shuffle else 1) for b, role in zip(blocks, roles)]
    own = [i for i, g in enumerate(groups) if h.pergroup_stream_bytes and len(g) >= h.pergroup_stream_bytes][:254]
    meta = json.dumps({"n": len(raw), "shuffle": int(h.pergroup_shuffle), "own": own,
                       "groups": [[len(g), r[2]] for g, r in zip(groups, roles)],
                       "segs": [[s[k] for k in PERGROUP_SEG_KEYS] for s in segs]}, separators=(",", ":")).encode()
    head = [struct.pack("<I", len(meta)), meta, *skeleton, *perms, *(g for i, g in enumerate(groups) if i not in own)]
    return pergroup_pack_streams([b"".join(head), *(groups[i] for i in own)], h.pergroup_backend)


def pergroup_decompress(blob):
    """Inverse of pergroup_compress: the exact torch.save bytes."""
    streams = pergroup_unpack_streams(blob)
    head, pos = streams[0], 4 + struct.unpack_from("<I", streams[0])[0]
    meta = json.loads(head[4:pos])
    segs = [dict(zip(PERGROUP_SEG_KEYS, s)) for s in meta["segs"]]
    skeleton_len = meta["n"] - sum(s["length"] for s in segs)
    skeleton, pos = head[pos:pos + skeleton_len], pos + skeleton_len
    perms = []
    for s in segs:
        size = s["rows"] * (2 if s["rows"] <= 65536 else 4) if s["perm"] else 0
        perms.append(np.frombuffer(head[pos:pos + size], np.uint16 if s["rows"] <= 65536 else np.uint32)
                     .astype(np.int64) if s["perm"] else None)
        pos += size
    groups, own = [], iter(streams[1:])
    for i, (size, esize) in enumerate(meta["groups"]):
        data = next(own) if i in meta["own"] else head[pos:pos + size]
        pos += 0 if i in meta["own"] else size
        groups.append(pergroup_unshuffle(data, esize if meta["shuffle"] else 1))
    taken, raw, cursor, sk = [0] * len(groups), bytearray(meta["n"]), 0, 0
    for s, perm in zip(segs, perms):
        g, start = s["group"], s["start"]
        data = pergroup_backward(groups[g][taken[g]:taken[g] + s["length"]], s, perm)
        taken[g] += s["length"]
        raw[cursor:start] = skeleton[sk:sk + start - cursor]
        sk += start - cursor
        raw[start:start + s["length"]] = data
        cursor = start + s["length"]
    raw[cursor:] = skeleton[sk:]
    if len(raw) != meta["n"]:
        raise ValueError("corrupt pergroup blob (the pieces do not add up to the recorded length)")
    return bytes(raw)


# ==================================================================================================
# wiring: generated by golfc
# ==================================================================================================
# Each slot global is bound to the symbol of the plugin that fills it (golfc/slots.py).
attention_kernel = varlen_attention  # plugins/varlen
QKV_PRE_ROPE = []  # slot qkv_pre_rope: none
VALUE_HOOKS = []  # slot value_hook: none
PositionEncoding = rope_position_encoding  # plugins/rope
QK_TRANSFORMS = []  # slot qk_transform: none
ATTENTION_POST = [
    ExclusiveSelfAttention,  # plugins/xsa
    SparseAttentionGate,  # plugins/sparse_attn_gate
]
MLP = LeakyReluSquaredMLP  # plugins/leaky_relu2
EMBEDDING_PRE_NORM = [
    SmearGate,  # plugins/smear_gate
]
EMBEDDING_EXTRAS = []  # slot embedding_extras: none
Block = ParallelResidualBlock  # plugins/parallel_residuals
block_norm = ln_scaled_norm  # plugins/ln_scale
layer_schedule = recurrent_layer_schedule  # plugins/depth_recurrence
SkipMixer = GatedUNetSkips  # plugins/unet_gated_skips
loss_from_hidden = fused_softcap_loss  # plugins/fused_ce
build_optimizers = build_muon_adam_optimizers  # plugins/muon
MUON_TRANSFORMS = [
    MUON_WEIGHT_DECAY,  # plugins/weight_decay
    MUON_EQ_R,  # plugins/muon_eq_r
    POLAR_NS,  # plugins/polar_ns
]
average_gradients = all_reduce_grads  # plugins/flat_allreduce
apply_schedule = apply_fraction_schedule  # plugins/warmdown_frac
RUN_EVENTS = [
    DepthRecurrenceEvents,  # plugins/depth_recurrence
    TTTTargetsCheck,  # plugins/ttt
    WeightDecayTaper,  # plugins/weight_decay
]
WeightAverager = EmaAverager  # plugins/ema
train_quant_hook = None  # slot train_quantization: none
LinearWeightTransform = None  # slot weight_transform: none
calibration_source = train_calibration_batches  # plugins/train_calibration
quantize_model = quantize_model_lowbit  # plugins/int6
dequantize_state_dict = dequantize_state_dict_lowbit  # plugins/int6
QUANT_LABEL = INT6_LABEL  # plugins/int6
QUANT_STAGES = [
    SDCLIP_STAGE,  # plugins/sdclip
    GPTQ_STAGE,  # plugins/gptq
    LQER_STAGE,  # plugins/lqer
]
budget_fitter = None  # slot budget_fitter: none
compress_bytes = pergroup_compress  # plugins/pergroup
decompress_bytes = pergroup_decompress  # plugins/pergroup
COMPRESS_LABEL = PERGROUP_LABEL  # plugins/pergroup
TrainLoader = TokenStreamLoader  # plugins/token_stream_loader
eval_windows = plain_windows  # plugins/plain_eval
score_validation = score_then_train  # plugins/ttt


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
