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
    title: str = ""  # what a reader calls it (ARCHITECTURE's slot table)
    default: str = ""  # the default plugin that fills it (ONE slots); empty: none

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
    exclusive: tuple[str, ...] = field(default=())  # MANY slots only: stages this one claims alone (at build)

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
        "fn(q, k, v, h, layer, fctx=None) -> y: causal attention of block `layer` (fctx: the forward's context, "
        "None outside a GPT forward); q (B,H,T,D), k and v (B,Hkv,T,D) with "
        "H % Hkv == 0; y (B,H,T,D)",
        "attention kernel",
        "sdpa_attention",
    ),
    Slot(
        "qkv_pre_rope",
        MANY,
        ("QKV_PRE_ROPE",),
        "fn(q, k, v, layer, h, fctx) -> (q, k, v): after QK-norm, before RoPE; q (B,T,H,D), k and v (B,T,Hkv,D)",
        "q/k/v transform before RoPE",
    ),
    Slot(
        "value_hook",
        MANY,
        ("VALUE_HOOKS",),
        "nn.Module class cls(h), one per model (GPT.value_hooks); forward(v (B,T,Hkv,D), layer, fctx) -> v, "
        "after RoPE, before the kernel",
        "value-side hook",
    ),
    Slot(
        "position_encoding",
        ONE,
        ("PositionEncoding",),
        "cls(head_dim, h, layer) -> nn.Module; forward(x (B,T,H,D)) -> (B,T,H,D) on per-head-normed q and k; "
        "optional grow_positions(seq_len), called outside compiled graphs before longer sequences",
        "position encoding",
        "rope",
    ),
    Slot(
        "qk_transform",
        MANY,
        ("QK_TRANSFORMS",),
        "fn(q, k, layer, h) -> (q, k): applied after QK-norm, RoPE and q_gain, before the kernel; (B,H|Hkv,T,D)",
        "q/k transform after RoPE",
    ),
    Slot(
        "attention_post",
        MANY,
        ("ATTENTION_POST",),
        "nn.Module class cls(h, layer), one per attention layer (attn.post.N); forward(y, v, x, fctx) -> y: after the "
        "kernel, before the output projection; y (B,T,H,D), v (B,T,Hkv,D), x (B,T,d) the attention's input",
        "post-attention",
    ),
    Slot("mlp", ONE, ("MLP",), "nn.Module class cls(h, layer); forward(x (B,T,d), fctx=None) -> (B,T,d)", "MLP",
         "relu2_mlp"),
    Slot(
        "embedding_pre_norm",
        MANY,
        ("EMBEDDING_PRE_NORM",),
        "nn.Module class cls(h); forward(ids (B,T), e (B,T,d)) -> e (B,T,d), on tok_emb(ids) before the embedding norm",
        "embedding before its norm",
    ),
    Slot(
        "embedding_extras",
        MANY,
        ("EMBEDDING_EXTRAS",),
        "nn.Module class cls(h); forward(ids (B,T), x (B,T,d)) -> x (B,T,d), after the embedding norm",
        "embedding extras",
    ),
    Slot(
        "block",
        ONE,
        ("Block",),
        "nn.Module class cls(h, layer), one per layer (stack.blocks.N); forward(x (B,T,d), x0 (B,T,d), fctx) -> "
        "(B,T,d)",
        "per-layer block",
        "unet_blocks",
    ),
    Slot(
        "block_norm",
        ONE,
        ("block_norm",),
        "fn(x (B,T,d), layer, h, fctx) -> (B,T,d): the norm of a block's attention and MLP inputs (pre-norm); every "
        "block plugin calls it",
        "block input norm",
        "unet_blocks",
    ),
    Slot(
        "layer_schedule",
        ONE,
        ("layer_schedule",),
        "fn(h, phases) -> tuple of layer indices: the order the blocks run in (a layer may repeat: depth recurrence)",
        "layer schedule",
        "unet_blocks",
    ),
    Slot(
        "skip_mixer",
        ONE,
        ("SkipMixer",),
        "class cls(h, stack), registers its parameters on the stack; before(stack, x, depth, fctx) -> x and "
        "after(stack, x, depth, fctx) -> x around the block at schedule position `depth`",
        "skip mixer",
        "unet_blocks",
    ),
    Slot(
        "loss",
        AT_MOST_ONE,
        ("loss_from_hidden",),
        "fn(model, hidden (B,T,d), targets (B,T), reduction) -> mean loss fp32 ('mean') or NLL (B,T) fp32 ('none'): "
        "the cross-entropy of model.logits(hidden); model.head(hidden) gives the logits before the softcap",
        "loss from the hidden state",
    ),
    Slot(
        "optimizer",
        ONE,
        ("build_optimizers",),
        "fn(model, h, ctx) -> list[torch.optim.Optimizer]; every param group carries 'base_lr'; gradients arrive "
        "averaged (grad_average)",
        "optimizer",
        "muon",
    ),
    Slot(
        "muon_transform",
        MANY,
        ("MUON_TRANSFORMS",),
        "object with any of, in stage order: setup(opt), before_update(params, group, opt), "
        "before_orthogonalise(G, params, transposed, group, opt) -> G, orthogonalise(G, steps) -> X (exclusive), "
        "after_orthogonalise(X, params, transposed, group, opt) -> X (stacks (n, r, c)), "
        "exchange(params, updates, group, opt) (several ranks; exclusive)",
        "Muon update transform",
    ),
    Slot(
        "grad_average",
        ONE,
        ("average_gradients",),
        "fn(params, ctx) -> None: with several ranks, after the backward, leaves every grad the mean over ranks",
        "gradient averaging",
        "flat_allreduce",
    ),
    Slot(
        "schedule",
        ONE,
        ("apply_schedule",),
        "fn(optimizers, step, elapsed_ms, h) -> float: sets lr (and momentum / wd) of every group, "
        "returns the lr multiplier",
        "schedule",
        "warmdown_schedule",
    ),
    Slot(
        "run_events",
        MANY,
        ("RUN_EVENTS",),
        "class cls(model, h, ctx) (RunEvents' methods): phases {name: fraction}, train_start(run), "
        "phase(model, name, on), step(model, step, clock_ms, lr_mul), before_export(model, ctx)",
        "run events",
    ),
    Slot(
        "weight_averaging",
        AT_MOST_ONE,
        ("WeightAverager",),
        "class cls(model, h); update(model, step, lr_mul) after each step; apply(model) once, before export",
        "weight averaging",
    ),
    Slot(
        "train_quantization",
        AT_MOST_ONE,
        ("train_quant_hook",),
        "fn(model, step, lr_mul, h) -> None: called before each training step (fake-quant / QAT switches)",
        "train-time quantization",
    ),
    Slot(
        "weight_transform",
        AT_MOST_ONE,
        ("LinearWeightTransform",),
        "nn.Module class cls(linear); forward(w (out, in) fp32) -> w: every CastedLinear's weight before its cast "
        "(fake quantization for QAT); buffers non-persistent",
        "linear weight transform",
    ),
    Slot(
        "calibration_source",
        ONE,
        ("calibration_source",),
        "fn(model, h, ctx, count) -> iterator of up to count token batches x int64 (b, T) on device; never "
        "validation data",
        "calibration source",
        "train_calibration",
    ),
    Slot(
        "quantizer",
        ONE,
        ("quantize_model", "dequantize_state_dict", "QUANT_LABEL"),
        "quantize_model(model, sd, h, ctx, calibration) -> (obj, stats dict); dequantize_state_dict(obj) -> sd "
        "(another format: RunInputError); QUANT_LABEL: str",
        "export quantizer",
        "int8_quant",
    ),
    Slot(
        "quant_stages",
        MANY,
        ("QUANT_STAGES",),
        "objects with any of plan(name, t, bits, h) -> bits, prepare(model, sd, h, ctx, calibration), "
        "clip(name, w, qmax, h) -> (rows,) | None, round(name, w, scale, qmax, h) -> q | None, finish(obj, sd, h): "
        "read by the low-bit quantizer (int6, int5, mixed_quant)",
        "quantizer stages",
    ),
    Slot(
        "budget_fitter",
        AT_MOST_ONE,
        ("budget_fitter",),
        "fn(obj, total_bytes, h) -> obj: called when code + compressed model > 16,000,000 bytes; total_bytes(obj) "
        "gives the submission size of a candidate",
        "budget fitter",
    ),
    Slot(
        "compressor",
        ONE,
        ("compress_bytes", "decompress_bytes", "COMPRESS_LABEL"),
        "compress_bytes(bytes) -> bytes; decompress_bytes(bytes) -> bytes; COMPRESS_LABEL: str",
        "compressor",
        "zlib_compress",
    ),
    Slot(
        "data_loader",
        ONE,
        ("TrainLoader",),
        "class cls(h, ctx); next_batch(global_tokens, seq_len, grad_accum_steps) -> (x, y) int64 (b, seq_len) "
        "on device; optional loss_weight (float): this rank's token share x world size, scales its loss",
        "train data loader",
        "token_stream_loader",
    ),
    Slot(
        "eval_windows",
        ONE,
        ("eval_windows",),
        "fn(val_tokens, h, ctx) -> EvalWindows(window, spans [(start, first_scored)], batch_seqs, pad): the windows "
        "every evaluation scores, each target exactly once",
        "evaluation windows",
        "plain_eval",
    ),
    Slot(
        "eval_adapter",
        ONE,
        ("score_validation",),
        "fn(model, val_tokens, h, ctx, final) -> Scores(positions (N,) int64, nll (N,) fp32, nbytes (N,) int, "
        "updates (N,) int64, seen (N,) int64) for this rank, built from ledger parts (span_scores / ledger_part); "
        "only a final=True evaluation may adapt the model, and then only from earlier targets (seen < position)",
        "eval adapter (scorer)",
        "plain_eval",
    ),
)

SLOTS_BY_NAME: dict[str, Slot] = {slot.name: slot for slot in SLOTS}


@dataclass(frozen=True)
class PluginInfo:
    """Metadata a plugin module exposes as ``GOLFC_PLUGIN``; shown by ``golfc plugins``."""

    summary: str  # one line: what the trick does
    evidence: str = ""  # record folder / PR and the claimed delta bpb
    conflicts: tuple[str, ...] = ()  # plugins that cannot be combined with this one (checked at build)

