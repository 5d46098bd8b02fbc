"""Phased TTT in the records' document order, kept for tests and never shipped (PR #1610 -> #1855): documents are
queued longest first, the global SGD phases train on the first PHASED_TTT_PREFIX_DOCS documents of that queue,
and the rest are scored after. Every document is still scored before any update trains on it (score-first holds),
but the prefix is chosen by length: a long document late in the stream is trained on before a short document early
in the stream is scored, so a later token changes an earlier target's score. The merged records were accepted
with this order; read strictly, C1 ("a function only of the strict prefix") rules it out, and golfc's stream-order
phases pass the flip probe that this variant fails."""

from __future__ import annotations

import torch


def score_length_queue(ns, model, val_tokens, h, ctx, final=True):
    base = getattr(model, "_orig_mod", model)
    params = [p for p in base.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    queue = sorted(ns["ttt_documents"](val_tokens), key=lambda d: d[0] - d[1])  # longest first
    parts, scored = [], []
    for docs, last in ns["phased_segments"](queue, h):
        parts += ns["score_lora_documents"](model, val_tokens, docs, h, ctx)
        scored += docs
        if last is not None:  # the documents scored so far, concatenated: not a prefix of the stream
            tokens = torch.cat([val_tokens[start : end + 1] for start, end in scored])
            ns["ttt_global_sgd"](model, params, tokens, tokens.numel() - 1, h, ctx)
    for p in params:
        p.requires_grad_(True)
    return ns["collect_scores"](parts, ctx.device)
