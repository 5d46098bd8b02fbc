"""Build-time hook specifications: the reference for plugin authors.

A plugin is a module (or object) with functions marked ``@golfc.hookimpl`` whose names are the hooks
below. Hooks run inside ``golfc build``; they never run in ``train_gpt.py``. A slot hook returns an
:class:`golfc.Impl` pointing at run-time code, which golfc inlines as one section of the emitted script
and binds, through the generated *wiring block*, to the slot's run-time globals (see
:data:`golfc.slots.SLOTS` for the globals and the run-time contract of each slot).

Cardinality is enforced by golfc, not by pluggy's ``firstresult``:

- exactly one (ONE): the default plugin's implementation unless exactly one requested plugin claims the
  slot; two requested claimants are an error naming both;
- many, ordered (MANY): every claimant, sorted by ``Impl.order`` then plugin name, bound as a list;
- at most one (AT_MOST_ONE): ``None`` unless one plugin claims it; two claimants are an error.

An implementation may accept any subset of a hook's arguments, so adding an argument later does not
break existing plugins. Every hook name starts with ``golfc_``; a marked function with another name is
rejected when the plugin is registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from golfc import PROJECT

if TYPE_CHECKING:
    from golfc.hparams import HParams
    from golfc.recipe import Recipe
    from golfc.slots import Impl

hookspec = pluggy.HookspecMarker(PROJECT)


# ==================================================================================================
# Setup
# ==================================================================================================
@hookspec
def golfc_add_hparams(hp: HParams) -> None:
    """Declare the plugin's environment-overridable hyperparameters.

    Call ``hp.int(NAME, default, doc)``, ``hp.float``, ``hp.str`` or ``hp.bool``. Each becomes a line of
    the emitted ``class Hyperparameters`` (``NAME = int(os.environ.get("NAME", default))``) and the
    run-time attribute ``h.name``. Declaring a name another active plugin declared is an error.
    ``golfc build --set NAME=VALUE`` replaces the emitted default. ``hp.str(..., choices=(...))`` limits a
    text knob to those values: ``--set`` refuses others, and so does the run, in one line, before it starts.
    A malformed number in the environment is refused the same way. ``hp.int``/``hp.float`` take ``ge=``,
    ``gt=`` and ``le=`` bounds (``hp.int("NUM_LAYERS", 9, "blocks", ge=1)``), and ``hp.require_multiple``,
    ``hp.require_even_quotient`` and ``hp.require_at_least`` declare a rule between two declared numbers
    (``hp.require_multiple("MODEL_DIM", "NUM_HEADS", note="...")``): a default out of its bounds is refused
    when declared; a ``--set`` value or an environment value that breaks either is one line at build or
    when the run starts (exit code 2), in the same words (golfc/runtime/checks.py).

    :param hp: the build's registry; ``hp.current_owner`` is set to the plugin's name during the call.
    """


@hookspec
def golfc_validate_recipe(recipe: Recipe, hparams: HParams, active: tuple[str, ...]) -> None:
    """Reject combinations that cannot work, by raising :class:`golfc.errors.RecipeError`.

    Called once per build after every plugin declared its hyperparameters and ``--set`` values were
    applied. Use it for requirements between plugins ("sliding eval needs EVAL_STRIDE < TRAIN_SEQ_LEN",
    "SLOT needs the plain data loader"). Slot conflicts are detected by golfc itself.

    :param recipe: what was asked for.
    :param hparams: declarations with their pinned defaults.
    :param active: every active plugin name, defaults included, in section order.
    """


# ==================================================================================================
# Model: attention
# ==================================================================================================
@hookspec
def golfc_attention_kernel(recipe: Recipe) -> Impl | None:
    """Provide the causal attention kernel (slot ``attention_kernel``, exactly one).

    Run-time contract: ``attention_kernel(q, k, v, h, layer) -> y`` with q ``(B, H, T, D)``, k and v
    ``(B, Hkv, T, D)``, ``H % Hkv == 0`` (grouped-query attention), y ``(B, H, T, D)``; scale
    ``1/sqrt(D)``; position t attends to positions ``<= t`` only; ``layer`` is the block's index (a kernel
    may differ per layer: window attention on some, full attention on others). q, k and v arrive as transposed views
    of ``(B, T, H, D)`` memory; a kernel that returns y in q's memory order (SDPA does) spares the core a
    copy when it merges the heads. Default: ``sdpa_attention``.
    """


@hookspec
def golfc_position_encoding(recipe: Recipe) -> Impl | None:
    """Provide the position encoding of queries and keys (slot ``position_encoding``, exactly one).

    Run-time contract: ``PositionEncoding(head_dim, h, layer)`` returns an ``nn.Module`` (a class or a factory)
    whose ``forward(x) -> x`` takes and returns ``(B, T, H, D)``; the core applies it to q and to k after their
    per-head RMS norm, before ``q_gain``. A module that caches tables per length defines
    ``grow_positions(seq_len)``: the core's ``ensure_positions(model, seq_len)`` calls it outside compiled graphs
    before an evaluation with longer sequences (building tables inside a compiled graph is not traceable).
    Default: ``rope`` (the baseline's RoPE). Example: ``ntk_rope`` (NTK-aware base for evaluations longer
    than TRAIN_SEQ_LEN).
    """


@hookspec
def golfc_qk_transform(recipe: Recipe) -> Impl | None:
    """Add a transform of queries and keys (slot ``qk_transform``, many, ordered).

    Run-time contract: ``fn(q, k, layer, h) -> (q, k)``, applied in order after the core's per-head
    RMS norm, RoPE and ``q_gain``, just before the kernel. Shapes as for the kernel. Default: none.
    """


@hookspec
def golfc_attention_post(recipe: Recipe) -> Impl | None:
    """Add a transform of the attention output (slot ``attention_post``, many, ordered).

    Run-time contract: ``fn(y, v, layer, h) -> y`` with y ``(B, T, H, D)`` (kernel output, heads not yet
    merged) and v ``(B, T, Hkv, D)`` (the values of the same tokens); runs before the output
    projection. Examples: XSA, output gates. Default: none.
    """


# ==================================================================================================
# Model: MLP, embedding, wiring
# ==================================================================================================
@hookspec
def golfc_mlp(recipe: Recipe) -> Impl | None:
    """Provide the feed-forward block (slot ``mlp``, exactly one).

    Run-time contract: ``MLP(h, layer)`` is an ``nn.Module`` with ``forward(x) -> y``, both
    ``(B, T, d)``. Its matrices should be ``CastedLinear`` so that the optimizer and quantizer see them.
    Default: ``relu2_mlp``.
    """


@hookspec
def golfc_embedding_pre_norm(recipe: Recipe) -> Impl | None:
    """Add to the token embedding before it is normalised (slot ``embedding_pre_norm``, many, ordered).

    Run-time contract: ``cls(h)`` is an ``nn.Module`` with ``forward(ids, e) -> e``, ids ``(B, T)`` int64,
    e ``(B, T, d)`` = ``tok_emb(ids)`` plus what earlier modules of this slot added; the result goes through
    ``rms_norm`` and then the ``embedding_extras``. Anything that reads other positions must read only
    earlier ones (and respect document boundaries when attention is document-isolated).
    Example: BigramHash (a hashed (previous, current) embedding added to the token embedding). Default: none.
    """


@hookspec
def golfc_embedding_extras(recipe: Recipe) -> Impl | None:
    """Add a module after the token embedding (slot ``embedding_extras``, many, ordered).

    Run-time contract: ``cls(h)`` is an ``nn.Module`` with ``forward(ids, x) -> x``, ids ``(B, T)`` int64,
    x ``(B, T, d)``; it runs after ``rms_norm(tok_emb(ids))`` and before ``x0`` is taken. Anything that
    mixes positions must respect document boundaries (BOS) when attention is document-isolated.
    Examples: BigramHash, SmearGate. Default: none.
    """


@hookspec
def golfc_block_wiring(recipe: Recipe) -> Impl | None:
    """Provide the stack of transformer blocks and how they connect (slot ``block_wiring``, exactly one).

    Run-time contract: ``BlockStack(h)`` is an ``nn.Module`` owning every block (built from the run-time
    globals ``CausalSelfAttention`` and ``MLP``), with ``forward(x, x0) -> x``, all ``(B, T, d)``.
    Default: ``unet_blocks`` (the baseline's residual mixing and U-Net skips).
    """


# ==================================================================================================
# Optimisation
# ==================================================================================================
@hookspec
def golfc_optimizer(recipe: Recipe) -> Impl | None:
    """Provide the optimizers (slot ``optimizer``, exactly one).

    Run-time contract: ``build_optimizers(model, h, ctx) -> list[torch.optim.Optimizer]``. Every param
    group stores its undecayed learning rate as ``group["base_lr"]``; the schedule scales from it.
    State must round-trip through ``state_dict()`` / ``load_state_dict()`` (the compile warmup resets it).
    With several ranks the optimizer owns gradient synchronisation choices. Default: ``muon``.
    """


@hookspec
def golfc_schedule(recipe: Recipe) -> Impl | None:
    """Provide the learning-rate / momentum / weight-decay schedule (slot ``schedule``, exactly one).

    Run-time contract: ``apply_schedule(optimizers, step, elapsed_ms, h) -> lr_mul`` is called before
    every optimizer step with the training step about to run and the training wall clock so far (under a
    cap, the same value on every rank: the slowest rank's); it sets ``group["lr"]`` (and any momentum or
    decay) of every group and returns the multiplier it used. A schedule must give every rank the same
    values for the same arguments, or the ranks' weights drift apart.
    Default: ``warmdown_schedule`` (wall-clock warmdown, Muon momentum warmup).
    """


@hookspec
def golfc_weight_averaging(recipe: Recipe) -> Impl | None:
    """Provide weight averaging (slot ``weight_averaging``, at most one).

    Run-time contract: ``WeightAverager(model, h)``; ``update(model, step, lr_mul)`` after each optimizer
    step; ``apply(model)`` once after training, before export. Examples: EMA, SWA. Default: none.
    """


@hookspec
def golfc_train_quantization(recipe: Recipe) -> Impl | None:
    """Provide train-time quantization (slot ``train_quantization``, at most one).

    Run-time contract: ``train_quant_hook(model, step, lr_mul, h)`` before each training step, e.g. to
    switch straight-through fake quantization on late in training. Default: none.
    """


# ==================================================================================================
# Artifact
# ==================================================================================================
@hookspec
def golfc_quantizer(recipe: Recipe) -> Impl | None:
    """Provide the export quantizer (slot ``quantizer``, exactly one).

    Run-time contract: ``quantize_state_dict(state_dict, h) -> (obj, stats)`` where ``obj`` is what gets
    ``torch.save``d and ``stats`` a dict with at least ``param_count``, ``payload_bytes`` and
    ``baseline_tensor_bytes``; ``dequantize_state_dict(obj) -> state_dict`` restores loadable tensors;
    ``QUANT_LABEL`` names the format in log lines (``final_<quant>_<compress>_roundtrip``).
    Default: ``int8_quant`` (per-row int8, 99.99984th-percentile clip).
    """


@hookspec
def golfc_compressor(recipe: Recipe) -> Impl | None:
    """Provide the artifact compressor (slot ``compressor``, exactly one).

    Run-time contract: ``compress_bytes(raw) -> bytes`` and ``decompress_bytes(blob) -> bytes``, exact
    inverses; ``COMPRESS_LABEL`` names it in log lines. Default: ``zlib_compress`` (level 9).
    """


# ==================================================================================================
# Data and evaluation
# ==================================================================================================
@hookspec
def golfc_data_loader(recipe: Recipe) -> Impl | None:
    """Provide the training data loader (slot ``data_loader``, exactly one).

    Run-time contract: ``TrainLoader(h, ctx)``; ``next_batch(global_tokens, seq_len, grad_accum_steps)``
    returns this rank's ``(x, y)``, int64 ``(global_tokens // (world * accum * seq_len), seq_len)`` on
    ``ctx.device``, y being x shifted by one. It reads only ``h.train_files``; validation data is never
    a training input. A loader whose ranks take different numbers of tokens (``mixed_seqlen``: per-rank
    sequence lengths, so x may be ``(n_r, L_r)``) sets ``loss_weight``: this rank's share of the step's
    tokens times the world size; the core multiplies the rank's mean loss by it before the backward, so that
    the plain average over ranks is the mean over every token (absent: 1.0, nothing multiplied).
    Default: ``token_stream_loader`` (the baseline's sequential stream).
    """


@hookspec
def golfc_eval_windows(recipe: Recipe) -> Impl | None:
    """Plan the windows every evaluation scores (slot ``eval_windows``, exactly one).

    Run-time contract: ``eval_windows(val_tokens, h, ctx) -> EvalWindows`` (core/data): a window length, the
    spans ``(start, first_scored)`` (a span reads tokens ``start .. start + window`` and scores targets
    ``first_scored + 1 .. start + window``; over all spans each target is scored exactly once), windows per
    forward on each rank, and whether the last batch is padded to that size. The scorer (``eval_adapter``)
    splits the spans across ranks with ``rank_share`` and batches them with ``window_batches``; any scorer
    works with any plan. Default: ``plain_eval`` (non-overlapping ``TRAIN_SEQ_LEN`` windows). Example:
    ``sliding_window``.
    """


@hookspec
def golfc_eval_adapter(recipe: Recipe) -> Impl | None:
    """Provide the scorer of the planned evaluation windows (slot ``eval_adapter``, exactly one).

    Run-time contract: ``score_validation(model, val_tokens, h, ctx, final) -> Scores`` where ``Scores`` holds,
    for every position this rank scored, ``positions`` (int64 index of the target token in
    ``val_tokens``), ``nll`` (fp32, nats) and ``nbytes`` (int, UTF-8 bytes of the target under the BPB
    tables). Every target position of the validation stream must be scored exactly once across ranks.
    The core reduces the scores to ``val_loss`` and ``val_bpb``; a verifier compares them position by
    position (future-token perturbation). ``final`` is True only for the evaluation of the scored
    artifact (the roundtrip); periodic and pre-export evaluations pass False and must not adapt. An adapter
    that adapts the model (TTT, SLOT) must score a token before any update that used it, and leave the
    model's weights as it found them. ``model`` may be the compiled module (its ``_orig_mod`` is the GPT,
    whose ``hidden(ids)`` and ``logits(hidden)`` make up ``forward``). Default: ``plain_eval``.
    """
