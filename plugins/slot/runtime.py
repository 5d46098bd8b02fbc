# ==================================================================================================
# plugins/slot: context-only SLOT (PRs #1306, #1333): in the final evaluation each sliding window gets
# its own delta (1, d) on the last hidden state, fitted for SLOT_STEPS AdamW steps on the window's context
# targets only (scored by earlier windows), and then scores the window's new targets with it
# ==================================================================================================
from golfc_plugins.sliding_window.runtime import (  # editors and tests only: blanked when emitted
    collect_scores,
    eval_window,
    rank_share,
    score_sliding_windows,
    sliding_window_batches,
    sliding_windows,
)

from golfc.runtime.data import target_bytes
from golfc.runtime.model import ensure_positions
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def fit_context_deltas(gpt, hidden, y, context, h):
    """One delta per window: (B, 1, d) fp32, fitted through gpt.logits only on the context targets.

    hidden (B, T, d) is fixed (computed once under no_grad); context (B, T) bool marks the targets a window
    may learn from (those before its scored ones). Rows are independent: AdamW is elementwise and each
    delta's gradient comes from its own row only, so no window learns from another window's tokens (a delta
    shared across the windows of a batch would: the L13 leak of PR #1217 before its fix).
    """
    delta = torch.zeros(hidden.size(0), 1, hidden.size(-1), device=hidden.device, requires_grad=True)
    count = context.sum().clamp_min(1)
    optimizer = torch.optim.AdamW([delta], lr=h.slot_lr, weight_decay=0.0)
    for _ in range(h.slot_steps):
        logits = gpt.logits(hidden + delta.to(hidden.dtype)).float()  # (B, T, V)
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        optimizer.zero_grad(set_to_none=True)
        (nll * context).sum().div(count).backward()
        optimizer.step()
    return delta.detach()


def score_with_context_slot(model, val_tokens, h, ctx, final=False):
    """Sliding-window scores; in the final evaluation each window's new targets scored with its own delta."""
    if not final:
        return score_sliding_windows(model, val_tokens, h, ctx, final)
    window = eval_window(h, val_tokens)
    spans = rank_share(sliding_windows(val_tokens.numel() - 1, window, h.eval_stride), ctx)
    ensure_positions(model, window)
    gpt = getattr(model, "_orig_mod", model)
    columns = torch.arange(window, device=ctx.device)
    parts = []
    was_training = gpt.training
    gpt.eval()
    for x, y, batch in sliding_window_batches(spans, val_tokens, window, h.eval_batch_seqs, ctx.device):
        keep = torch.tensor([first - start for start, first in batch] + [window] * (x.size(0) - len(batch)),
                            device=ctx.device)  # padded rows: all context, never scored
        with torch.no_grad(), bf16_autocast(ctx.device):
            hidden = gpt.hidden(x)  # (B, T, d)
        with bf16_autocast(ctx.device):
            delta = fit_context_deltas(gpt, hidden, y, columns[None, :] < keep[:, None], h)
        with torch.no_grad(), bf16_autocast(ctx.device):
            logits = gpt.logits(hidden + delta.to(hidden.dtype)).float()
            nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        nbytes = target_bytes(x, y, ctx.luts)
        for i, (start, first_scored) in enumerate(batch):
            positions = torch.arange(first_scored + 1, start + window + 1, device=ctx.device)
            parts.append((positions, nll[i, first_scored - start :], nbytes[i, first_scored - start :]))
    gpt.train(was_training)
    return collect_scores(parts, ctx.device)
