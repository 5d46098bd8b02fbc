"""A leaky TTT, kept for tests and never shipped: it trains on chunk k *before* scoring chunk k (rule L1:
validation tokens reach backward() before their scores are committed). The causality probe must fail it."""

from __future__ import annotations

import torch


def score_after_training(ns, model, val_tokens, h, ctx, final=True):
    plan = ns["eval_windows"](val_tokens, h, ctx)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.SGD(params, lr=h.ttt_lr, momentum=h.ttt_momentum)
    parts = []
    for k, members in ns["ttt_chunks"](plan.spans, h.ttt_chunk_tokens):
        sequences = ns["ttt_sequences"](val_tokens, k, h.ttt_chunk_tokens, h.train_seq_len)
        ns["ttt_train_chunk"](model, params, optimizer, sequences, ctx, h.ttt_epochs, h.ttt_batch_seqs,
                              h.ttt_grad_clip)  # the leak: chunk k trained on before it is scored
        with torch.no_grad():
            for x, y, batch in ns["window_batches"](plan, members, val_tokens, ctx.device):
                nll = model(x, y, reduction="none")
                parts.extend(ns["span_scores"](plan, batch, nll, torch.ones_like(y), ctx.device))
    return ns["collect_scores"](parts, ctx.device)
