"""A leaky TTT, kept for tests and never shipped: it trains on chunk k *before* scoring chunk k (rule L1:
validation tokens reach backward() before their scores are committed). The causality probe must fail it."""

from __future__ import annotations

import torch


def score_after_training(ns, model, val_tokens, h, ctx, final=True):
    window = ns["eval_window"](h, val_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.SGD(params, lr=h.ttt_lr, momentum=h.ttt_momentum)
    spans = ns["sliding_windows"](val_tokens.numel() - 1, window, h.eval_stride)
    parts = []
    for k, members in ns["ttt_chunks"](spans, h.ttt_chunk_tokens):
        ns["ttt_train_chunk"](model, params, optimizer, ns["ttt_sequences"](val_tokens, k, h), h, ctx)  # leak
        with torch.no_grad():
            for x, y, batch in ns["sliding_window_batches"](members, val_tokens, window, h.eval_batch_seqs, ctx.device):
                nll = model(x, y, reduction="none")
                for i, (start, first) in enumerate(batch):
                    positions = torch.arange(first + 1, start + window + 1)
                    parts.append((positions, nll[i, first - start :].clone(), torch.ones_like(positions)))
    return ns["collect_scores"](parts, ctx.device)
