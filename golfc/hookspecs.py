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
    from collections.abc import Mapping

    from golfc.engine import Binding
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
def golfc_validate_recipe(
    recipe: Recipe, hparams: HParams, active: tuple[str, ...], bindings: Mapping[str, list[Binding]]
) -> None:
    """Reject combinations that cannot work, by raising :class:`golfc.errors.RecipeError`.

    Called once per build after every plugin declared its hyperparameters, ``--set`` values were
    applied and every slot was filled. Use it for requirements between plugins ("sliding eval needs
    EVAL_STRIDE < TRAIN_SEQ_LEN", "SLOT needs the plain data loader", "ROPE_DIMS needs a position encoding
    that honours it"). Slot conflicts are detected by golfc itself.

    :param recipe: what was asked for.
    :param hparams: declarations with their pinned defaults.
    :param active: every active plugin name, defaults included, in section order.
    :param bindings: slot name -> the plugins filling it (``golfc.engine.Binding``: ``.plugin``, ``.impl``), in
        order; e.g. ``bindings["position_encoding"][0].plugin``.
    """


# ==================================================================================================
# Model: attention
# ==================================================================================================
@hookspec
def golfc_attention_kernel(recipe: Recipe) -> Impl | None:
    """Provide the causal attention kernel (slot ``attention_kernel``, exactly one).

    Run-time contract: ``attention_kernel(q, k, v, h, layer, fctx=None) -> y`` with q ``(B, H, T, D)``, k and v
    ``(B, Hkv, T, D)``, ``H % Hkv == 0`` (grouped-query attention), y ``(B, H, T, D)``; scale
    ``1/sqrt(D)``; position t attends to positions ``<= t`` only; ``layer`` is the block's index (a kernel
    may differ per layer: window attention on some, full attention on others); ``fctx`` is the forward's
    context (``fctx.ids`` for document masks, ``fctx.cache`` to build a mask once per forward), None when the
    kernel is called outside a GPT forward (declare it ``fctx=None``). q, k and v arrive as transposed views
    of ``(B, T, H, D)`` memory; a kernel that returns y in q's memory order (SDPA does) spares the core a
    copy when it merges the heads. Default: ``sdpa_attention``.
    """


@hookspec
def golfc_position_encoding(recipe: Recipe) -> Impl | None:
    """Provide the position encoding of queries and keys (slot ``position_encoding``, exactly one).

    Run-time contract: ``PositionEncoding(head_dim, h, layer)`` returns an ``nn.Module`` (a class or a factory)
    whose ``forward(x) -> x`` takes and returns ``(B, T, H, D)``; the core applies it to q and to k after their
    per-head RMS norm, before ``q_gain``. A module that caches tables per length defines
    ``grow_positions(seq_len)``: the scorers' ``ensure_positions(model, seq_len)`` (plugins/plain_eval) calls it
    outside compiled graphs before an evaluation with longer sequences (building tables inside a compiled graph
    is not traceable).
    Default: ``rope`` (the baseline's RoPE). Example: ``ntk_rope`` (NTK-aware base for evaluations longer
    than TRAIN_SEQ_LEN).
    """


@hookspec
def golfc_qk_transform(recipe: Recipe) -> Impl | None:
    """Add a transform of queries and keys (slot ``qk_transform``, many, ordered; the list ``QK_TRANSFORMS``).

    Run-time contract: ``fn(q, k, layer, h) -> (q, k)``, applied in order after the core's per-head
    RMS norm, RoPE and ``q_gain``, just before the kernel. Shapes as for the kernel. Default: none.
    """


@hookspec
def golfc_attention_post(recipe: Recipe) -> Impl | None:
    """Add a transform of the attention output (slot ``attention_post``, many, ordered; the list ``ATTENTION_POST``).

    Run-time contract: ``cls(h, layer)`` is an ``nn.Module`` made once per attention layer (state-dict
    names ``...attn.post.N.*``, so per-layer parameters such as gate weights live in the model) with
    ``forward(y, v, x, fctx) -> y``: y ``(B, T, H, D)`` (kernel output, heads not yet merged), v
    ``(B, T, Hkv, D)`` (the values of the same tokens), x ``(B, T, d)`` (the attention block's input, i.e.
    the normed residual stream) and ``fctx`` the forward's context (None when attention is called on its
    own). Runs in order before the output projection. Examples: XSA, output gates. Default: none.
    """


# ==================================================================================================
# Model: MLP, embedding, wiring
# ==================================================================================================
@hookspec
def golfc_mlp(recipe: Recipe) -> Impl | None:
    """Provide the feed-forward block (slot ``mlp``, exactly one).

    Run-time contract: ``MLP(h, layer)`` is an ``nn.Module`` with ``forward(x, fctx=None) -> y``, both
    ``(B, T, d)``; blocks pass the forward's ``ForwardContext`` (ids, x0, layer, phases, cache), as they do to
    attention. Its matrices should be ``CastedLinear`` so that the optimizer and quantizer see them.
    Default: ``relu2_mlp``.
    """


@hookspec
def golfc_embedding_pre_norm(recipe: Recipe) -> Impl | None:
    """Add to the token embedding before its norm (slot ``embedding_pre_norm``, many, ordered; the list
    ``EMBEDDING_PRE_NORM``).

    Run-time contract: ``cls(h)`` is an ``nn.Module`` with ``forward(ids, e) -> e``, ids ``(B, T)`` int64,
    e ``(B, T, d)`` = ``tok_emb(ids)`` plus what earlier modules of this slot added; the result goes through
    ``rms_norm`` and then the ``embedding_extras``. Anything that reads other positions must read only
    earlier ones (and respect document boundaries when attention is document-isolated).
    Example: BigramHash (a hashed (previous, current) embedding added to the token embedding). Default: none.
    """


@hookspec
def golfc_embedding_extras(recipe: Recipe) -> Impl | None:
    """Add a module after the token embedding (slot ``embedding_extras``, many, ordered; the list ``EMBEDDING_EXTRAS``).

    Run-time contract: ``cls(h)`` is an ``nn.Module`` with ``forward(ids, x) -> x``, ids ``(B, T)`` int64,
    x ``(B, T, d)``; it runs after ``rms_norm(tok_emb(ids))`` and before ``x0`` is taken. Anything that
    mixes positions must respect document boundaries (BOS) when attention is document-isolated.
    Examples: BigramHash, SmearGate. Default: none.
    """


@hookspec
def golfc_block(recipe: Recipe) -> Impl | None:
    """Provide the per-layer transformer block (slot ``block``, exactly one).

    Run-time contract: ``Block(h, layer)`` is an ``nn.Module`` (built from the run-time globals
    ``CausalSelfAttention`` and ``MLP``); the core's ``BlockStack`` makes one per layer (state-dict names
    ``stack.blocks.N``) and calls ``forward(x, x0, fctx) -> x``, all ``(B, T, d)``, x0 the normed embedding and
    fctx the forward's ``ForwardContext`` (ids, x0, phases, layer, depth, a per-forward cache), which the block
    hands to ``self.attn(x, fctx)``. Default: ``unet_blocks`` (residual mixing with x0, per-channel scales).
    """


@hookspec
def golfc_block_norm(recipe: Recipe) -> Impl | None:
    """Provide the norm of a block's attention and MLP inputs (slot ``block_norm``, exactly one).

    Run-time contract: ``block_norm(x, layer, h, fctx) -> y``, x and y ``(B, T, d)``: what a block feeds its
    attention and its MLP (pre-norm), ``layer`` the block's index (``stack.blocks[layer]``, the same block
    every time it runs under depth recurrence), ``fctx`` the forward's context. Every block plugin calls it
    instead of ``rms_norm`` (tests/test_hooks.py checks each one in the catalogue). Example: LN scale
    (``rms_norm(x) / sqrt(layer + 1)``). Default: ``unet_blocks`` (``rms_norm(x)``).
    """


@hookspec
def golfc_layer_schedule(recipe: Recipe) -> Impl | None:
    """Provide the order the blocks run in (slot ``layer_schedule``, exactly one).

    Run-time contract: ``layer_schedule(h, phases) -> tuple[int, ...]``, indices into the ``NUM_LAYERS`` blocks,
    called on every forward with the run phases switched on (``RunEvents.phases``); a layer may appear more
    than once (depth recurrence: ``0, 1, 2, 3, 4, 3, 4, 5, ...``), and the schedule may change when a phase
    switches on (the compile warmup runs that graph too). It must depend on nothing but its arguments (it runs
    inside the compiled graph). Default: ``unet_blocks`` (every block once, in order).
    """


@hookspec
def golfc_skip_mixer(recipe: Recipe) -> Impl | None:
    """Provide the connections between blocks other than the residual stream (slot ``skip_mixer``, exactly one).

    Run-time contract: ``SkipMixer(h, stack)`` is made once by the ``BlockStack`` after its blocks and registers
    its parameters on ``stack`` (state-dict names ``stack.<name>``); for the block at schedule position ``depth``
    the stack calls ``x = mixer.before(stack, x, depth, fctx)``, the block, then ``x = mixer.after(stack, x,
    depth, fctx)``; keep per-forward state (saved activations) in ``fctx.cache``; ``fctx.schedule`` is the layer
    schedule this forward runs (its length changes when depth recurrence switches on), and the schedules a run can
    take are those of the run phases the ``RUN_EVENTS`` classes declare (``unet_schedules(h)`` in unet_blocks).
    Examples: U-Net skips, gated skips (``unet_gated_skips``). Default: ``unet_blocks`` (the first half of the
    schedule's positions push, later ones add ``skip_weights[i] * pop()``).
    """


@hookspec
def golfc_qkv_pre_rope(recipe: Recipe) -> Impl | None:
    """Add a transform of q, k and v before RoPE (slot ``qkv_pre_rope``, many, ordered; the list ``QKV_PRE_ROPE``).

    Run-time contract: ``fn(q, k, v, layer, h, fctx) -> (q, k, v)`` with q ``(B, T, H, D)``, k and v
    ``(B, T, Hkv, D)``, applied in order after the per-head RMS norm of q and k and before RoPE (then come
    the value hooks, ``q_gain``, the ``qk_transform`` list and the kernel). ``fctx`` is the forward's
    ``ForwardContext`` (None when attention runs outside a GPT). Examples: per-head q/k scaling, partial
    mixing of heads. Default: none.
    """


@hookspec
def golfc_value_hook(recipe: Recipe) -> Impl | None:
    """Add a module that changes the attention values (slot ``value_hook``, many, ordered; the list ``VALUE_HOOKS``).

    Run-time contract: ``cls(h)`` is an ``nn.Module`` made once per model (``GPT.value_hooks.N``, so that a
    table can be shared by every layer) with ``forward(v, layer, fctx) -> v``, v ``(B, T, Hkv, D)``; every
    attention layer calls each module in order after RoPE and before the kernel, and ``attention_post`` sees
    the result. ``fctx.ids`` are the input tokens. Example: value embeddings (``v + gate_layer * ve(ids)``).
    Default: none.
    """


@hookspec
def golfc_loss(recipe: Recipe) -> Impl | None:
    """Provide the loss computed from the last hidden state (slot ``loss``, at most one).

    Run-time contract: ``loss_from_hidden(model, hidden, targets, reduction) -> loss`` with hidden ``(B, T, d)``
    (``GPT.hidden``, before the final norm), targets ``(B, T)`` int64 and ``reduction`` "mean" (the training loss,
    an fp32 scalar) or "none" (per-token NLL ``(B, T)`` fp32, what every evaluation scores). It must compute the
    cross-entropy of ``model.logits(hidden)`` (final norm, head, softcap); ``model.head(hidden)`` gives the
    logits before the softcap and ``model.logit_softcap`` the cap, for a kernel that fuses the softcap into the
    loss. ``GPT.forward`` calls it in place of its own ``F.cross_entropy``; it runs inside the compiled graph.
    Example: ``fused_ce`` (a Triton softcapped cross-entropy on CUDA training steps). Default: none (the core's
    ``F.cross_entropy(model.logits(hidden).float(), targets)``).
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
    With several ranks the gradients ``step()`` sees are already averaged over ranks (the ``grad_average``
    slot); an optimizer may still use collectives inside ``step()`` (Muon shares its updates). A parameter's
    ``group`` tag (``tag_param``) picks its optimizer before any rule of the default's. Default: ``muon``.
    """


@hookspec
def golfc_muon_transform(recipe: Recipe) -> Impl | None:
    """Add a transform of Muon's update (slot ``muon_transform``, many, ordered; the list ``MUON_TRANSFORMS``,
    which the ``muon`` optimizer applies).

    Run-time contract: an object (an instance, not a class) with any of these methods, called in this stage
    order: ``setup(opt)`` once when the optimizer is built (``opt.h``: the hyperparameters; ``opt.adam``: the
    Adam optimizer built beside it, its groups named ``"embed"``, ``"head"``, ``"scalar"`` by ``group["name"]``);
    then every step, per param group, ``before_update(params, group, opt)`` once with all of the group's
    matrices, on every rank (e.g. decoupled weight decay ``p *= 1 - lr * wd``; or waiting for gradients
    still being reduced); then, per stack of same-shape matrices in the wide orientation (``rows <= cols``),
    ``before_orthogonalise(G, params, transposed, group, opt) -> G`` on the Nesterov momentum stack
    ``(n, r, c)`` (e.g. MuonEq-R row equalisation), ``orthogonalise(G, steps) -> X`` in place of the
    Newton-Schulz iteration (e.g. Polar Express coefficients; compiled with it when COMPILE is on) and
    ``after_orthogonalise(X, params, transposed, group, opt) -> X`` on the orthogonalised bf16 stack before
    the shape scale (e.g. NorMuon); last, with several ranks only, ``exchange(params, updates, group, opt)``
    instead of the default all-reduce: ``updates`` maps this rank's parameter indices to bf16 updates and
    every rank must leave every matrix ``p -= group["lr"] * update`` (e.g. Parallel Muon's all-gathers).
    ``params`` are the stack's parameters, ``transposed[i]`` says whether matrix i was transposed into the
    stack (its rows, the output neurons, are then the stack's columns); keep state in ``opt.state[p]``
    (saved and restored with the optimizer). With several ranks each rank sees only its own share of the
    stacks. Within a stage, transforms run in list order (``Impl.order``, then plugin name).
    ``orthogonalise`` and ``exchange`` are exclusive: a plugin that defines one declares it in
    ``Impl(exclusive=(...))``, and two plugins claiming the same stage are refused at build (two objects
    defining it, at run time). Default: none.
    """


@hookspec
def golfc_grad_average(recipe: Recipe) -> Impl | None:
    """Provide gradient averaging over ranks (slot ``grad_average``, exactly one).

    Run-time contract: ``average_gradients(params, ctx) -> None``, called only when the run has several
    ranks, after the backward of every micro-batch of a step and before clipping and the optimizers; every
    ``p.grad`` that is not None must then hold the mean over ranks, identical on every rank. One exception:
    an implementation paired with its optimizer may leave some gradients in flight for the optimizer to finish
    (``parallel_muon`` reduce-scatters Muon's matrices and its Muon transform waits for them); it must then
    refuse ``GRAD_CLIP_NORM`` > 0, which reads every gradient first. Default: ``flat_allreduce`` (one flat
    all-reduce per dtype).
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
def golfc_run_events(recipe: Recipe) -> Impl | None:
    """Add listeners of the run's events and phases (slot ``run_events``, many, ordered; the list ``RUN_EVENTS``).

    Run-time contract: a class (usually a subclass of ``RunEvents``, core/prelude) made once as
    ``cls(model, h, ctx)`` when the model is built; its ``phases`` ``{name: fraction}`` declares run phases
    switched on when the training clock reaches ``fraction`` of ``MAX_WALLCLOCK_SECONDS`` (of ``ITERATIONS``
    when uncapped; every rank switches at the same step), which every forward sees as ``fctx.phases`` and the
    plugin as ``phase(model, name, on)``. Then ``train_start(run)``, ``step(model, step, clock_ms, lr_mul)``
    after each timed step and ``before_export(model, ctx)`` (the order is ``RunEvents``' docstring). The
    compile warmup runs each phase's graph and restores weights, optimizer state and data afterwards.
    Examples: late QAT, depth recurrence switched on mid-run. Default: none.
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
def golfc_weight_transform(recipe: Recipe) -> Impl | None:
    """Transform every ``CastedLinear`` weight before its matmul (slot ``weight_transform``, at most one).

    Run-time contract: ``LinearWeightTransform(linear)`` is an ``nn.Module`` built once inside each
    ``CastedLinear`` (as its submodule ``weight_transform``); ``forward(w) -> w`` receives the fp32 weight
    ``(out, in)`` and returns what the layer multiplies with (cast to the activation dtype after it). Keep its
    state in non-persistent buffers (the artifact holds only the weights) and switch it with tensor values, not
    Python attributes: a compiled forward keeps a Python constant it read once (one record's late QAT never
    ran). Example: ``qat`` (straight-through fake quantization). Default: none (the weight as it is).
    """


@hookspec
def golfc_calibration_source(recipe: Recipe) -> Impl | None:
    """Provide the calibration data a quantizer may read (slot ``calibration_source``, exactly one).

    Run-time contract: ``calibration_source(model, h, ctx, count)`` yields up to ``count`` token batches, int64
    ``(b, T)`` on ``ctx.device``; it never reads validation data. The quantizer receives a ``Calibration``
    (core/train) whose ``batches(count)`` draws from it and records the training clock of the last read
    (training stops ``GPTQ_RESERVE_SECONDS`` early so that calibration fits inside the cap); its log line names
    the source (the function's name less ``_batches``). Default: ``train_calibration`` (training micro-batches
    from a fresh ``TrainLoader``). Example: ``ar_selfgen`` (tokens the model samples itself).
    """


@hookspec
def golfc_quantizer(recipe: Recipe) -> Impl | None:
    """Provide the export quantizer (slot ``quantizer``, exactly one).

    Run-time contract: ``quantize_model(model, state_dict, h, ctx, calibration) -> (obj, stats)`` where ``obj``
    is what gets ``torch.save``d, carrying its format and version under ``"__quant_format__"``, and ``stats`` a
    dict with at least ``param_count``, ``payload_bytes`` and ``baseline_tensor_bytes``; ``model`` is the
    trained module (forward hooks, Hessians), ``calibration`` a ``Calibration`` (core/train) that reads data
    only when asked; every rank calls it. ``dequantize_state_dict(obj) -> state_dict`` restores loadable
    tensors and raises ``RunInputError`` (one line, exit 2) for another format or version; ``QUANT_LABEL``
    names the format in log lines (``final_<quant>_<compress>_roundtrip``).
    Default: ``int8_quant`` (per-row int8, 99.99984th-percentile clip).
    """


@hookspec
def golfc_quant_stages(recipe: Recipe) -> Impl | None:
    """Add a stage to the low-bit quantizer (slot ``quant_stages``, many, ordered; bound as the list
    ``QUANT_STAGES``).

    Run-time contract: an object with any of these methods, which the low-bit quantizer (``int6``, ``int5``,
    ``mixed_quant``; not ``int8_quant``) calls: ``plan(name, t, bits, h) -> bits`` per tensor, in order (16:
    keep it in fp16); ``prepare(model, state_dict, h, ctx, calibration)`` once before any tensor (GPTQ collects
    its Hessians); ``clip(name, w, qmax, h)`` -> the per-row clip ``(rows,)`` or None (the first non-None wins;
    default the 99.99984th percentile of ``|w|``); ``round(name, w, scale, qmax, h)`` -> the int values or None
    (default round to nearest); ``finish(obj, state_dict, h)`` once after every tensor (LQER adds low-rank
    corrections to ``obj``); ``hessian(name)`` -> the matrix's input Hessian ``(cols, cols)`` or None (a stage
    that collected them shares them: ``gptq``; ``sdclip``'s Hessian-aware clip reads them through
    ``lowbit_hessian``). Examples: ``fp16_keep``, ``gptq_lite``, ``sdclip``, ``gptq``, ``lqer``. Default: none.
    """


@hookspec
def golfc_compressor(recipe: Recipe) -> Impl | None:
    """Provide the artifact compressor (slot ``compressor``, exactly one).

    Run-time contract: ``compress_bytes(raw) -> bytes`` and ``decompress_bytes(blob) -> bytes``, exact
    inverses; ``COMPRESS_LABEL`` names it in log lines. A stream it cannot read may raise any exception: the core
    reports it as one line (exit 2). Options (level, byte shuffle) are the compressor's own hyperparameters; an
    optional package it needs is checked when the program starts (one line naming it). Default: ``zlib_compress``
    (level 9). Others: ``lzma``, ``zstd``, ``brotli``, ``pergroup`` (the torch.save blob regrouped by
    tensor role before compression).
    """


@hookspec
def golfc_budget_fitter(recipe: Recipe) -> Impl | None:
    """Shrink an artifact over the 16,000,000-byte budget (slot ``budget_fitter``, at most one).

    Run-time contract: ``budget_fitter(obj, total_bytes, h) -> obj`` is called on rank 0, before the artifact is
    written, only when code bytes + compressed model bytes exceed 16,000,000; ``total_bytes(obj)`` is the
    submission size of a candidate object (serialized, compressed, plus the code). It logs what it changed.
    Without a fitter an over-budget artifact stops the run with both numbers (exit 2), ``final_model.pt``
    (the unquantized weights) kept. Examples: ``prune_pm1``, ``fit_budget``. Default: none.
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
    works with any plan. Default: ``plain_eval`` (non-overlapping ``TRAIN_SEQ_LEN`` windows); its
    ``sliding_windows(num_targets, window, stride)`` plans overlapping spans for a plugin whose Impl requires
    ``golfc_plugins.plain_eval.runtime``. Example: ``sliding_window``.
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
    model's weights as it found them. ``Scores`` also carries the score ledger (core/data): ``updates``, the
    optimizer steps the evaluation had taken when the position was scored (counted by the core's
    ``ledger_scores`` for any ``torch.optim`` optimizer), and ``seen``, the last target position any update
    behind the score learned from (-1: none), declared by the scorer through ``span_scores(..., seen)`` or
    ``ledger_part``; ``collect_scores`` builds ``Scores`` from those parts. Score-first holds where
    ``seen < position``; the final evaluation logs the totals (``score_ledger ... violations:V``) for
    ``golfc verify``, and ``check_contract`` checks them per position. ``model`` may be the compiled module
    (its ``_orig_mod`` is the GPT, whose ``hidden(ids)`` and ``logits(hidden)`` make up ``forward``). The verifier's
    probe (core/probe, docs/verify.md) reads the distribution a scorer scored from the last ``GPT.logits`` before
    each ``span_scores``; a scorer that scores another distribution (a mixture, a cache) hands its final
    log-probabilities ``(B, T, V)`` to ``probe_distribution(logp)`` just before ``span_scores``.
    Default: ``plain_eval``.
    """
