# ==================================================================================================
# plugins/slot: context-only SLOT (PRs #1306, #1333): in the final evaluation each evaluation window gets
# its own delta (1, d) on the last hidden state, fitted for SLOT_STEPS AdamW steps on the window's context
# targets only (scored by earlier windows), and then scores the window's new targets with it
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import (  # editors and tests only: blanked when emitted
    ensure_positions,
    score_plain_windows,
)

from golfc.runtime.data import collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def fit_context_deltas(gpt, hidden, y, context, h):
    """One delta per window: (B, 1, d) fp32, fitted through gpt.logits only on the context targets.

    hidden (B, T, d) is fixed (computed once under no_grad); context (B, T) bool marks the targets a window
    may learn from (those before its scored ones). Rows are independent: AdamW is elementwise and each
    delta's gradient comes from its own row only, so no window learns from another window's tokens (a delta
    shared across the windows of a batch would: the L13 leak of PR #1217 before its fix). Each window's loss is
    the mean over its own context, so a score does not depend on the other windows of its batch either (a
    batch-wide mean did, through AdamW's eps: golfc verify's batch probe found it).
    """
    delta = torch.zeros(hidden.size(0), 1, hidden.size(-1), device=hidden.device, requires_grad=True)
    count = context.sum(dim=1, keepdim=True).clamp_min(1)  # (B, 1): each window's own context size
    optimizer = torch.optim.AdamW([delta], lr=h.slot_lr, weight_decay=0.0)
    for _ in range(h.slot_steps):
        logits = gpt.logits(hidden + delta.to(hidden.dtype)).float()  # (B, T, V)
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        optimizer.zero_grad(set_to_none=True)
        (nll * context).div(count).sum().backward()
        optimizer.step()
    return delta.detach()


def score_with_context_slot(model, val_tokens, h, ctx, final=False):
    """Scores of the planned windows; in the final evaluation each window's new targets are scored with its
    own delta (the first window of a plain or sliding plan has no context and keeps delta = 0)."""
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    plan = eval_windows(val_tokens, h, ctx)
    ensure_positions(model, plan.window)
    gpt = getattr(model, "_orig_mod", model)
    columns = torch.arange(plan.window, device=ctx.device)
    parts = []
    was_training = gpt.training
    gpt.eval()
    for x, y, batch in window_batches(plan, rank_share(plan.spans, ctx), val_tokens, ctx.device):
        keep = torch.tensor([first - start for start, first in batch] + [plan.window] * (x.size(0) - len(batch)),
                            device=ctx.device)  # padded rows: all context, never scored
        with torch.no_grad(), bf16_autocast(ctx.device):
            hidden = gpt.hidden(x)  # (B, T, d)
        with bf16_autocast(ctx.device):
            delta = fit_context_deltas(gpt, hidden, y, columns[None, :] < keep[:, None], h)
        with torch.no_grad(), bf16_autocast(ctx.device):
            logits = gpt.logits(hidden + delta.to(hidden.dtype)).float()
            nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        # ledger: each window's delta learned from its context targets start + 1 .. first, none when first == start
        seen = [first if first > start else -1 for start, first in batch]
        parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device, seen))
    gpt.train(was_training)
    return collect_scores(parts, ctx.device)
