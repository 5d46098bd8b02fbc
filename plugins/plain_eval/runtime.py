# ==================================================================================================
# plugins/plain_eval: the default evaluation windows (non-overlapping TRAIN_SEQ_LEN windows, the
# reference's) and the default scorer (every window of the plan scored once, no adaptation), with the
# helpers other window plans and scorers reuse (sliding_windows, ensure_positions): those plugins require it
# ==================================================================================================
from golfc.runtime.data import EvalWindows, collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


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
