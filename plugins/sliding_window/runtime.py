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


def score_sliding_windows(model, val_tokens, h, ctx):
    """Scores of this rank's share of the windows (contiguous runs of windows per rank)."""
    window = h.eval_seq_len or h.train_seq_len
    if h.eval_stride > window:
        raise RunInputError(f"EVAL_STRIDE={h.eval_stride} is longer than the window EVAL_SEQ_LEN={window}")
    spans = sliding_windows(val_tokens.numel() - 1, window, h.eval_stride)
    window = min(window, val_tokens.numel() - 1)
    mine = spans[len(spans) * ctx.rank // ctx.world_size : len(spans) * (ctx.rank + 1) // ctx.world_size]
    ensure_positions(model, window)
    offsets = torch.arange(window + 1)
    positions, nll, nbytes = [], [], []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), bf16_autocast(ctx.device):
        for b in range(0, len(mine), h.eval_batch_seqs):
            batch = mine[b : b + h.eval_batch_seqs]
            starts = torch.tensor([s for s, _ in batch] + [batch[-1][0]] * (h.eval_batch_seqs - len(batch)))
            tokens = val_tokens[starts[:, None] + offsets].to(ctx.device, torch.int64, non_blocking=True)
            x, y = tokens[:, :-1], tokens[:, 1:]  # (EVAL_BATCH_SEQS, window): every batch one shape, padded
            batch_nll = model(x, y, reduction="none").float()
            batch_bytes = target_bytes(x, y, ctx.luts)
            for i, (start, first_scored) in enumerate(batch):
                keep = first_scored - start  # columns before this are context, scored by an earlier window
                nll.append(batch_nll[i, keep:])
                nbytes.append(batch_bytes[i, keep:])
                positions.append(torch.arange(first_scored + 1, start + window + 1, device=ctx.device))
    model.train(was_training)
    if not positions:  # more ranks than windows
        empty = torch.empty(0, device=ctx.device)
        return Scores(empty.long(), empty.float(), empty.to(torch.int16))
    return Scores(positions=torch.cat(positions), nll=torch.cat(nll), nbytes=torch.cat(nbytes))
