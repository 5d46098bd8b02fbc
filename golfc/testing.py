"""Helpers for testing run-time code and plugins: load an assembled program without running it.

``load_program()`` executes every section of a recipe, exactly as the self-extracting loader does, into
a fresh namespace whose ``__name__`` is not ``"__main__"``, so ``main()`` does not start. Environment
variables given in ``env`` are visible while ``class Hyperparameters`` is created.
"""

from __future__ import annotations

import linecache
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from golfc.build import assemble_sections
from golfc.emit.wrap import FUTURE_ANNOTATIONS_FLAG
from golfc.engine import resolve
from golfc.recipe import Recipe

# A 2-layer, 32-wide model on 64-token sequences: an emitted train_gpt.py runs a step in well under a second on
# one CPU core. Add DATA_PATH / TOKENIZER_PATH / VOCAB_SIZE (e.g. DatasetPaths.env()) and ITERATIONS.
TINY_RUN_ENV: dict[str, str] = {
    "DEVICE": "cpu",
    "NUM_LAYERS": "2",
    "MODEL_DIM": "32",
    "NUM_HEADS": "2",
    "NUM_KV_HEADS": "1",
    "TRAIN_SEQ_LEN": "64",
    "TRAIN_BATCH_TOKENS": "4096",
    "VAL_BATCH_SIZE": "32768",
    "WARMUP_STEPS": "2",
    "VAL_LOSS_EVERY": "0",
    "TRAIN_LOG_EVERY": "1",
    "MAX_WALLCLOCK_SECONDS": "0",
}


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_PROGRAM_NUMBERS = count()  # load_program's module names: golfc_program_0, golfc_program_1, ...


def load_program(
    plugins: tuple[str, ...] = (),
    overrides: dict[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    plugins_dir: Path | None = None,
) -> dict[str, Any]:
    """Assemble a recipe and exec its sections into a namespace; returns the namespace."""
    recipe = Recipe(plugins=tuple(plugins), overrides=dict(overrides or {}))
    # the sections the build ships, without packing and compiling the self-extracting file (a sixth of a second
    # per call, hundreds of calls a suite): the tests of the build and each emitted run check that
    sections = assemble_sections(resolve(recipe, plugins_dir))
    # a real module per program: torch.compile imports a traced function's module by its __name__ (FlexAttention's
    # mask functions), so the namespace must be findable in sys.modules; one name per load keeps programs apart
    module = types.ModuleType(f"golfc_program_{next(_PROGRAM_NUMBERS)}")
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    namespace["__builtins__"] = __builtins__
    with environment(env or {}):
        for section in sections:
            linecache.cache[section.filename] = (
                len(section.source),
                None,
                section.source.splitlines(True),
                section.filename,
            )
            exec(compile(section.source, section.filename, "exec", FUTURE_ANNOTATIONS_FLAG), namespace)
    return namespace


class PluginDir:
    """A ``--plugins-dir`` folder for tests: ``add(name, build_src, runtime_src)`` writes ``name.py`` (build-time
    hooks) and ``name_runtime.py`` (run-time face, referenced as ``Impl(module="name_runtime", ...)``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, name: str, build_src: str, runtime_src: str | None = None) -> Path:
        (self.root / f"{name}.py").write_text(textwrap.dedent(build_src))
        if runtime_src is not None:
            (self.root / f"{name}_runtime.py").write_text(textwrap.dedent(runtime_src))
        return self.root


def slot_plugin(hook: str, module: str, symbols: str | dict[str, str], extra: str = "") -> str:
    """Build-time source of a loose plugin whose ``hook`` returns ``Impl(module, symbols)``."""
    return f"""
from golfc import Impl, hookimpl

@hookimpl
def {hook}():
    return Impl(module={module!r}, symbols={symbols!r})
{extra}
"""


FINAL_LINE = re.compile(r"^final_\w+_roundtrip_exact val_loss:(\d+\.\d+) val_bpb:(\d+\.\d+)$", re.M)


@dataclass
class TinyRun:
    """What one emitted program printed in a tiny CPU run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def final_bpb(self) -> float | None:
        """The roundtrip score of the artifact, or None when the run printed none."""
        found = FINAL_LINE.findall(self.stdout)
        return float(found[-1][1]) if found else None


def run_emitted(
    plugins: tuple[str, ...],
    dataset: Any,
    out_dir: Path,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, str] | None = None,
    timeout: int = 600,
) -> TinyRun:
    """Build ``plugins`` into ``out_dir`` and run its shipped ``train_gpt.py`` there on CPU under
    :data:`TINY_RUN_ENV` (plus ``dataset.env()``, ``ITERATIONS=3`` and ``env``): an end-to-end check that the
    emitted program trains, exports and scores its artifact."""
    from golfc.build import build_submission

    build = build_submission(tuple(plugins), dict(overrides or {}), out_dir)
    run_env = {**os.environ, **dataset.env(), **TINY_RUN_ENV, "ITERATIONS": "3", **dict(env or {})}
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=build.out_dir, env=run_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return TinyRun(proc.returncode, proc.stdout, proc.stderr)


def run_without_package(plugins: tuple[str, ...], package: str, out_dir: Path,
                        overrides: dict[str, str] | None = None) -> TinyRun:
    """Build ``plugins`` into ``out_dir`` and start its ``train_gpt.py`` with ``import package`` failing (a module of
    that name that raises ImportError shadows it on PYTHONPATH): what a user without the optional package sees."""
    from golfc.build import build_submission

    build = build_submission(tuple(plugins), dict(overrides or {}), out_dir / "out")
    blocker = out_dir / "block"
    blocker.mkdir(exist_ok=True)
    (blocker / f"{package}.py").write_text("raise ImportError('blocked for the test')\n")
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=build.out_dir,
                          env={**os.environ, "PYTHONPATH": str(blocker)}, capture_output=True, text=True,
                          timeout=120, check=False)
    return TinyRun(proc.returncode, proc.stdout, proc.stderr)


def prefix_violations(score: Any, model: Any, val_tokens: Any, h: Any, ctx: Any, j: int, seed: int = 0) -> list[str]:
    """Score ``val_tokens`` and a copy whose tokens at and after ``j`` are redrawn; every score of a target
    before ``j`` must be bit-identical (C1: a later token never changes an earlier token's score). Returns one
    line per violation (empty: causal at ``j``). ``score`` is an eval adapter ``fn(model, val_tokens, h, ctx,
    final)``, called with ``final=True``; the model's weights are restored between the two calls."""
    import torch

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    other = val_tokens.clone()
    generator = torch.Generator().manual_seed(seed)
    vocab = int(val_tokens.max()) + 1
    other[j:] = torch.randint(0, vocab, (val_tokens.numel() - j,), generator=generator, dtype=val_tokens.dtype)
    first = score(model, val_tokens, h, ctx, True)
    model.load_state_dict(state)
    second = score(model, other, h, ctx, True)
    model.load_state_dict(state)
    a = dict(zip(first.positions.tolist(), first.nll.tolist()))
    b = dict(zip(second.positions.tolist(), second.nll.tolist()))
    return [f"position {p} (< j={j}): nll {a[p]!r} became {b.get(p)!r}"
            for p in sorted(a) if p < j and a[p] != b.get(p)]


def cpu_context(ns: dict[str, Any], rank: int = 0, world: int = 1, vocab: int = 64, device: str = "cpu") -> Any:
    """A loaded program's ``RunContext`` for rank ``rank`` of ``world`` on the CPU (or ``device``: the GPU tests),
    with BPB tables in which every token is one byte (so bits per byte are bits per token): what an eval adapter
    needs in a test."""
    import torch

    ctx = ns["RunContext"](rank, world, rank, torch.device(device), rank == 0, world > 1, 8 // world)
    ctx.luts = tuple(t.to(device) for t in (torch.ones(vocab, dtype=torch.int16), torch.zeros(vocab, dtype=torch.bool),
                                            torch.zeros(vocab, dtype=torch.bool)))
    return ctx


# --------------------------------------------------------------------------------------------------
# Parity helpers of the GPU tests (tests/gpu): a kernel against its reference
# --------------------------------------------------------------------------------------------------
def relative_error(actual: Any, expected: Any) -> float:
    """||actual - expected|| / ||expected||, in fp32 whatever the tensors' dtypes."""
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


def attention_leaves(T: int, seed: int = 0, device: str = "cuda") -> list[Any]:
    """q (4, 8, T, 64), k and v (4, 4, T, 64) bf16 leaves that require grad (GQA 2, the baseline's head_dim), as
    transposed views of (B, T, H, D) memory, the layout the core hands an attention kernel."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    shapes = ((4, 8, T, 64), (4, 4, T, 64), (4, 4, T, 64))  # (B, H, T, D)
    return [torch.randn(s[0], s[2], s[1], s[3], device=device, generator=g).bfloat16().transpose(1, 2)
            .requires_grad_() for s in shapes]


def forward_backward(fn: Any, tensors: list[Any]) -> tuple[Any, ...]:
    """fn(q, k, v) on fresh copies of the leaves, backward of sum(y^2): (y, dq, dk, dv), each in fp32."""
    q, k, v = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(q, k, v)
    y.float().square().sum().backward()
    return y.float(), q.grad.float(), k.grad.float(), v.grad.float()


@contextmanager
def recorded_ops() -> Iterator[list[str]]:
    """The names of the operators dispatched inside the block (whether a custom kernel ran, or did not)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    names: list[str] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            names.append(str(func))
            return func(*args, **(kwargs or {}))

    with Recorder():
        yield names


def mixing_model(ns: dict[str, Any], seed: int = 0, std: float = 0.3) -> Any:
    """A loaded program's GPT whose zero-initialised output projections are drawn at random, so that every
    position's score depends on its context (at init each block is the identity and attention is invisible)."""
    import torch

    torch.manual_seed(seed)
    model = ns["GPT"](ns["Hyperparameters"]())
    for name, p in model.named_parameters():
        if name.endswith("proj.weight") and not p.any():
            torch.nn.init.normal_(p, std=std)
    return model


def check_contract(slot: str, plugin: str | None = None, env: Mapping[str, str] | None = None,
                   plugins_dir: Path | None = None, companions: tuple[str, ...] = ()) -> list[str]:
    """Problems with ``plugin``'s implementation of ``slot`` on the CPU (empty: it keeps the contract); see
    :mod:`golfc.contracts` for what each slot's check calls and compares."""
    from golfc.contracts import check_contract as check

    return check(slot, plugin, env, plugins_dir, companions)


# A model big enough that every matrix class is quantized once QUANT_KEEP_FLOAT_NUMEL / INT8_KEEP_FLOAT_MAX_NUMEL are
# lowered to 1024, small enough to train in seconds on one CPU core: what the artifact tests quantize.
TINY_QUANT_ENV: dict[str, str] = {
    "DEVICE": "cpu", "NUM_LAYERS": "2", "MODEL_DIM": "64", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
    "MLP_MULT": "2", "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "4096", "QUANT_KEEP_FLOAT_NUMEL": "1024",
}


# Tokens the tests' datasets keep of each validation document (BOS included): the tiny corpus's 34 validation documents
# hold 183,168 tokens (vocabulary 384), cut they hold 16,320 (4 forward passes of a tiny run's evaluation), and every
# document stays (the verifier's documents check builds its probe stream from pieces of many documents). An emitted
# tiny run evaluates twice (last step, roundtrip); over the whole split its two evaluations were about 85% of its time.
TINY_VAL_DOC_TOKENS = 480


def cut_validation(built: Any, doc_tokens: int = TINY_VAL_DOC_TOKENS) -> Any:
    """``built`` (a :class:`golfc.data.build.DatasetPaths`) with each validation document cut to its first
    ``doc_tokens`` tokens, in one shard (the train shards and the tokenizer as built); its val stats say so."""
    import dataclasses
    import itertools

    import numpy as np

    from golfc.data.build import SplitStats
    from golfc.data.shards import read_shard, write_shard

    first, *rest = built.val.shards
    tokens = np.concatenate([read_shard(shard) for shard in built.val.shards])
    starts = [*np.nonzero(tokens == 1)[0].tolist(), tokens.size]  # each document is [BOS=1] + its tokens
    tokens = np.concatenate([tokens[a : min(b, a + doc_tokens)] for a, b in itertools.pairwise(starts)])
    write_shard(first, tokens)
    for shard in rest:
        shard.unlink()
    val = SplitStats(docs=built.val.docs, tokens=int(tokens.size), text_bytes=-1, shards=(first,))  # -1: not counted
    return dataclasses.replace(built, val=val)


def train_tiny(ns: dict[str, Any], dataset: Any, steps: int = 60, seed: int = 0) -> Any:
    """A loaded program's GPT trained for ``steps`` Adam steps on the first training shard of ``dataset`` (CPU,
    16 sequences of TRAIN_SEQ_LEN per step): trained weights, with the structure real weights have, for the
    quantizer tests."""
    import torch

    h = ns["Hyperparameters"]()
    torch.manual_seed(seed)
    model = ns["GPT"](h)
    tokens = ns["load_data_shard"](sorted(Path(dataset.data_path).glob("fineweb_train_*.bin"))[0]).to(torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    T, B = h.train_seq_len, 16
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, tokens.numel() - T - 1, (B,), generator=gen)
        x = torch.stack([tokens[s : s + T] for s in starts])
        y = torch.stack([tokens[s + 1 : s + T + 1] for s in starts])
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


# The stand-in for flash-attn's flash_attn_func (FA3's flash_attn_interface, FA4's flash_attn.cute) for CPU tests of
# code that calls it: golfc/flash_attn_stand_in.py, the one implementation (the benches run the same file as FA3 for
# the records' scripts: bench/flash_attn_shim). Exact attention through SDPA on flash-attn's (B, T, H, D) layout, GQA,
# windows, varlen. Here it records each call in CALLS and returns (out, lse) as FA4 and older FA3 builds do.
FLASH_ATTN_STAND_IN_FILE = Path(__file__).with_name("flash_attn_stand_in.py")
FLASH_ATTN_STAND_IN = FLASH_ATTN_STAND_IN_FILE.read_text(encoding="utf-8") + "\nCALLS = []\nRETURN_LSE = True\n"


def flash_attn_stand_in(folder: Path, module: str = "flash_attn_interface") -> Path:
    """Write :data:`FLASH_ATTN_STAND_IN` as ``module`` (``flash_attn_interface``, or ``flash_attn.cute`` as a
    package) under ``folder``, for a subprocess's ``PYTHONPATH``; returns ``folder``."""
    parts = module.split(".")
    target = folder.joinpath(*parts[:-1])
    target.mkdir(parents=True, exist_ok=True)
    for depth in range(1, len(parts)):
        folder.joinpath(*parts[:depth], "__init__.py").touch()
    (target / f"{parts[-1]}.py").write_text(FLASH_ATTN_STAND_IN)
    return folder


def flash_attn_stand_in_module(name: str = "flash_attn_interface") -> Any:
    """The stand-in as a fresh module object (its own CALLS), for ``monkeypatch.setitem(sys.modules, name, ...)``."""
    import types

    module = types.ModuleType(name)
    module.__file__ = str(FLASH_ATTN_STAND_IN_FILE)
    exec(compile(FLASH_ATTN_STAND_IN, str(FLASH_ATTN_STAND_IN_FILE), "exec"), module.__dict__)
    return module
