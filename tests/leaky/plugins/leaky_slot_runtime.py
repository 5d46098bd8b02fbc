# ==================================================================================================
# tests/leaky: SLOT variants that learn from the tokens they score (L12: a delta per window fitted on its
# scored targets) or from later windows (L13: one delta shared by a batch of windows, fitted on all their
# contexts, PR #1333's shape). Never shipped: the verifier's causality and batch probes must fail them.
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import score_plain_windows  # editors and tests only: blanked when emitted

from golfc.runtime.data import collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def leaky_fit_delta(gpt, hidden, y, mask, rows, h):
    """A delta (rows, 1, d) on the last hidden state, fitted through gpt.logits on the targets in mask."""
    delta = torch.zeros(rows, 1, hidden.size(-1), device=hidden.device, requires_grad=True)
    optimizer = torch.optim.AdamW([delta], lr=h.leaky_slot_lr, weight_decay=0.0)
    for _ in range(h.leaky_slot_steps):
        logits = gpt.logits(hidden + delta).float()
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        optimizer.zero_grad()
        (nll * mask).sum().div(mask.sum().clamp_min(1)).backward()
        optimizer.step()
    return delta.detach()


def leaky_slot(model, val_tokens, h, ctx, shared):
    plan = eval_windows(val_tokens, h, ctx)
    gpt = getattr(model, "_orig_mod", model)
    columns = torch.arange(plan.window, device=ctx.device)
    parts = []
    for x, y, batch in window_batches(plan, rank_share(plan.spans, ctx), val_tokens, ctx.device):
        keep = torch.tensor([first - start for start, first in batch] + [plan.window] * (x.size(0) - len(batch)),
                            device=ctx.device)
        with torch.no_grad():
            hidden = gpt.hidden(x)
        if shared:  # L13: one delta for the whole batch, fitted on every window's context
            delta = leaky_fit_delta(gpt, hidden, y, (columns[None, :] < keep[:, None]).float(), 1, h)
        else:  # L12: one delta per window, fitted on all of its targets, the scored ones included
            delta = leaky_fit_delta(gpt, hidden, y, torch.ones(y.shape, device=ctx.device), x.size(0), h)
        with torch.no_grad():
            logits = gpt.logits(hidden + delta).float()
            nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device))
    return collect_scores(parts, ctx.device)


def score_shared_delta(model, val_tokens, h, ctx, final=False):
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    return leaky_slot(model, val_tokens, h, ctx, shared=True)


def score_scored_delta(model, val_tokens, h, ctx, final=False):
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    return leaky_slot(model, val_tokens, h, ctx, shared=False)
