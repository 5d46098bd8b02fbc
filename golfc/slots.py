"""Slots: the named places in the run-time program that plugins fill.

Each slot is one hook (``golfc_<slot>`` in :mod:`golfc.hookspecs`) and one or more *wiring globals*:
names that the generated wiring block of ``train_gpt.py`` binds to the plugin's run-time symbols.
The core run-time code refers only to these globals, never to a plugin by name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Cardinality(enum.Enum):
    """How many implementations a slot takes."""

    ONE = "exactly one"  # a default plugin fills it unless exactly one other plugin does
    MANY = "many, ordered"  # every claimant, sorted by (Impl.order, plugin name); bound as a list
    AT_MOST_ONE = "at most one"  # bound to None when nobody claims it


@dataclass(frozen=True)
class Slot:
    """A hook point of the run-time program."""

    name: str
    cardinality: Cardinality
    wiring: tuple[str, ...]  # run-time globals bound in the wiring block
    contract: str  # what the bound symbol must be, in run-time terms

    @property
    def hook_name(self) -> str:
        return f"golfc_{self.name}"


@dataclass(frozen=True)
class Impl:
    """A reference from a build-time hook to run-time code.

    ``module`` is the dotted name of a run-time module (a plain Python file that imports only the
    standard library, numpy, sentencepiece and torch); golfc inlines its source as one section of
    ``train_gpt.py``. ``symbols`` maps each wiring global of the slot to a top-level name of that module;
    a plain string is accepted for slots with a single wiring global.
    """

    module: str
    symbols: Mapping[str, str] | str
    order: int = 0  # MANY slots only: lower runs first
    requires: tuple[str, ...] = field(default=())  # further run-time modules this one needs

    def bindings(self, slot: Slot) -> dict[str, str]:
        """The wiring global -> symbol map for ``slot``; raises ValueError when it does not fit."""
        if isinstance(self.symbols, str):
            if len(slot.wiring) != 1:
                raise ValueError(f"slot {slot.name!r} binds {', '.join(slot.wiring)}: give a mapping, not one name")
            return {slot.wiring[0]: self.symbols}
        missing = set(slot.wiring) - set(self.symbols)
        extra = set(self.symbols) - set(slot.wiring)
        if missing or extra:
            raise ValueError(
                f"slot {slot.name!r} binds exactly {', '.join(slot.wiring)}; "
                f"got {', '.join(sorted(self.symbols)) or 'nothing'}"
            )
        return dict(self.symbols)


ONE, MANY, AT_MOST_ONE = Cardinality.ONE, Cardinality.MANY, Cardinality.AT_MOST_ONE

SLOTS: tuple[Slot, ...] = (
    Slot(
        "attention_kernel",
        ONE,
        ("attention_kernel",),
        "fn(q, k, v, h, layer) -> y: causal attention of block `layer`; q (B,H,T,D), k and v (B,Hkv,T,D) with "
        "H % Hkv == 0; y (B,H,T,D)",
    ),
    Slot(
        "position_encoding",
        ONE,
        ("PositionEncoding",),
        "cls(head_dim, h, layer) -> nn.Module; forward(x (B,T,H,D)) -> (B,T,H,D) on per-head-normed q and k; "
        "optional grow_positions(seq_len), called outside compiled graphs before longer sequences",
    ),
    Slot(
        "qk_transform",
        MANY,
        ("QK_TRANSFORMS",),
        "fn(q, k, layer, h) -> (q, k): applied after QK-norm, RoPE and q_gain, before the kernel; (B,H|Hkv,T,D)",
    ),
    Slot(
        "attention_post",
        MANY,
        ("ATTENTION_POST",),
        "fn(y, v, layer, h) -> y: after the kernel, before the output projection; y (B,T,H,D), v (B,T,Hkv,D)",
    ),
    Slot("mlp", ONE, ("MLP",), "nn.Module class cls(h, layer); forward(x (B,T,d)) -> (B,T,d)"),
    Slot(
        "embedding_pre_norm",
        MANY,
        ("EMBEDDING_PRE_NORM",),
        "nn.Module class cls(h); forward(ids (B,T), e (B,T,d)) -> e (B,T,d), on tok_emb(ids) before the embedding norm",
    ),
    Slot(
        "embedding_extras",
        MANY,
        ("EMBEDDING_EXTRAS",),
        "nn.Module class cls(h); forward(ids (B,T), x (B,T,d)) -> x (B,T,d), after the embedding norm",
    ),
    Slot(
        "block_wiring",
        ONE,
        ("BlockStack",),
        "nn.Module class cls(h) owning the transformer blocks; forward(x (B,T,d), x0 (B,T,d)) -> (B,T,d)",
    ),
    Slot(
        "optimizer",
        ONE,
        ("build_optimizers",),
        "fn(model, h, ctx) -> list[torch.optim.Optimizer]; every param group carries 'base_lr'",
    ),
    Slot(
        "schedule",
        ONE,
        ("apply_schedule",),
        "fn(optimizers, step, elapsed_ms, h) -> float: sets lr (and momentum / wd) of every group, "
        "returns the lr multiplier",
    ),
    Slot(
        "weight_averaging",
        AT_MOST_ONE,
        ("WeightAverager",),
        "class cls(model, h); update(model, step, lr_mul) after each step; apply(model) once, before export",
    ),
    Slot(
        "train_quantization",
        AT_MOST_ONE,
        ("train_quant_hook",),
        "fn(model, step, lr_mul, h) -> None: called before each training step (fake-quant / QAT switches)",
    ),
    Slot(
        "quantizer",
        ONE,
        ("quantize_state_dict", "dequantize_state_dict", "QUANT_LABEL"),
        "quantize_state_dict(sd, h) -> (obj, stats dict); dequantize_state_dict(obj) -> sd; QUANT_LABEL: str",
    ),
    Slot(
        "compressor",
        ONE,
        ("compress_bytes", "decompress_bytes", "COMPRESS_LABEL"),
        "compress_bytes(bytes) -> bytes; decompress_bytes(bytes) -> bytes; COMPRESS_LABEL: str",
    ),
    Slot(
        "data_loader",
        ONE,
        ("TrainLoader",),
        "class cls(h, ctx); next_batch(global_tokens, seq_len, grad_accum_steps) -> (x, y) int64 (b, seq_len) "
        "on device; optional loss_weight (float): this rank's token share x world size, scales its loss",
    ),
    Slot(
        "eval_windows",
        ONE,
        ("eval_windows",),
        "fn(val_tokens, h, ctx) -> EvalWindows(window, spans [(start, first_scored)], batch_seqs, pad): the windows "
        "every evaluation scores, each target exactly once",
    ),
    Slot(
        "eval_adapter",
        ONE,
        ("score_validation",),
        "fn(model, val_tokens, h, ctx, final) -> Scores(positions (N,) int64, nll (N,) fp32, nbytes (N,) int) "
        "for this rank; only a final=True evaluation may adapt the model",
    ),
)

SLOTS_BY_NAME: dict[str, Slot] = {slot.name: slot for slot in SLOTS}


@dataclass(frozen=True)
class PluginInfo:
    """Metadata a plugin module exposes as ``GOLFC_PLUGIN``; shown by ``golfc plugins``."""

    summary: str  # one line: what the trick does
    evidence: str = ""  # record folder / PR and the claimed delta bpb
    conflicts: tuple[str, ...] = ()  # plugins that cannot be combined with this one (checked at build)
