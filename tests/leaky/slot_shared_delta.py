"""A leaky SLOT, kept for tests and never shipped: one delta (1, 1, d) shared by all windows of a batch and
fitted on every window's context (rule L13, PR #1217 before its fix). A window's score then depends on the
tokens of the other windows in its batch, later ones included. The causality probe must fail it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def score_with_shared_delta(ns, model, val_tokens, h, ctx, final=True):
    plan = ns["eval_windows"](val_tokens, h, ctx)
    columns = torch.arange(plan.window)
    parts = []
    for x, y, batch in ns["window_batches"](plan, plan.spans, val_tokens, ctx.device):
        keep = torch.tensor([first - start for start, first in batch] + [plan.window] * (x.size(0) - len(batch)))
        context = columns[None, :] < keep[:, None]
        with torch.no_grad():
            hidden = model.hidden(x)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)  # the leak: one delta for the batch
        optimizer = torch.optim.AdamW([delta], lr=h.slot_lr, weight_decay=0.0)
        for _ in range(h.slot_steps):
            nll = F.cross_entropy(model.logits(hidden + delta).flatten(0, 1), y.flatten(), reduction="none")
            optimizer.zero_grad()
            (nll.view_as(y) * context).sum().div(context.sum().clamp_min(1)).backward()
            optimizer.step()
        with torch.no_grad():
            nll = F.cross_entropy(model.logits(hidden + delta).flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        parts.extend(ns["span_scores"](plan, batch, nll, torch.ones_like(y), ctx.device))
    return ns["collect_scores"](parts, ctx.device)
