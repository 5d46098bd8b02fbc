# ==================================================================================================
# plugins/sliding_window: evaluation windows of EVAL_SEQ_LEN tokens every EVAL_STRIDE tokens; the first
# window scores all its targets, every later one only its last EVAL_STRIDE, so each target is scored
# exactly once with at least EVAL_SEQ_LEN - EVAL_STRIDE tokens of context (PR #50)
# ==================================================================================================
from golfc.runtime.data import target_bytes
from golfc.runtime.model import ensure_positions
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def sliding_windows(num_targets, window, stride):
    """[(start, first_scored)] over targets 1 .. num_targets of a stream: window k reads tokens
    start .. start + window (inputs start .. start + window - 1) and scores targets first_scored + 1 ..
    start + window. The last window ends exactly at the stream's end and scores only what is left, so no
    target is scored twice (the duplicate tail fixed in the records on 2026-04-01)."""
    window = min(window, num_targets)
    spans, end = [(0, 0)], window
    while end < num_targets:
        start = min(end + stride, num_targets) - window
        spans.append((start, end))
        end = start + window
    return spans


def sliding_window_batches(spans, val_tokens, window, batch_seqs, device):
    """Yield (x, y, batch) for consecutive runs of batch_seqs spans: x, y (batch_seqs, window) int64 on device,
    every batch the same shape (the last one padded with copies of its last window, so a compiled model
    compiles once); batch lists the spans of the real rows. Row i scores columns batch[i][1] - batch[i][0] on."""
    offsets = torch.arange(window + 1)
    for b in range(0, len(spans), batch_seqs):
        batch = spans[b : b + batch_seqs]
        starts = torch.tensor([s for s, _ in batch] + [batch[-1][0]] * (batch_seqs - len(batch)))
        tokens = val_tokens[starts[:, None] + offsets].to(device, torch.int64, non_blocking=True)
        yield tokens[:, :-1], tokens[:, 1:], batch


def rank_share(items, ctx):
    """This rank's contiguous share of a list (ranks in order cover it exactly once)."""
    return items[len(items) * ctx.rank // ctx.world_size : len(items) * (ctx.rank + 1) // ctx.world_size]


def eval_window(h, val_tokens):
    """The evaluation window length (EVAL_SEQ_LEN, 0: TRAIN_SEQ_LEN), at most the stream; checks the stride."""
    window = h.eval_seq_len or h.train_seq_len
    if h.eval_stride > window:
        raise RunInputError(f"EVAL_STRIDE={h.eval_stride} is longer than the window EVAL_SEQ_LEN={window}")
    return min(window, val_tokens.numel() - 1)


def collect_scores(parts, device):
    """Scores from a list of (positions, nll, nbytes) pieces; empty when this rank scored nothing."""
    if not parts:  # more ranks than windows
        empty = torch.empty(0, device=device)
        return Scores(empty.long(), empty.float(), empty.to(torch.int16))
    positions, nll, nbytes = zip(*parts)
    return Scores(positions=torch.cat(positions), nll=torch.cat(nll), nbytes=torch.cat(nbytes))


def score_sliding_windows(model, val_tokens, h, ctx, final=False):
    """Scores of this rank's share of the windows (contiguous runs of windows per rank); never adapts."""
    window = eval_window(h, val_tokens)
    spans = rank_share(sliding_windows(val_tokens.numel() - 1, window, h.eval_stride), ctx)
    ensure_positions(model, window)
    parts = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), bf16_autocast(ctx.device):
        for x, y, batch in sliding_window_batches(spans, val_tokens, window, h.eval_batch_seqs, ctx.device):
            batch_nll = model(x, y, reduction="none").float()
            batch_bytes = target_bytes(x, y, ctx.luts)
            for i, (start, first_scored) in enumerate(batch):
                keep = first_scored - start  # columns before this are context, scored by an earlier window
                positions = torch.arange(first_scored + 1, start + window + 1, device=ctx.device)
                parts.append((positions, batch_nll[i, keep:], batch_bytes[i, keep:]))
    model.train(was_training)
    return collect_scores(parts, ctx.device)
