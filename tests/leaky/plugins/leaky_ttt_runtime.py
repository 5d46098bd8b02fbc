# ==================================================================================================
# tests/leaky: test-time training that trains on validation tokens before their scores are committed
# (L1 train-then-score, L2 last-epoch scoring). Never shipped: the verifier's causality probe must fail both.
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import score_plain_windows  # editors and tests only: blanked when emitted

from golfc.runtime.data import collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def leaky_chunks(spans, chunk_tokens):
    chunks = {}
    for span in spans:
        chunks.setdefault(span[1] // chunk_tokens, []).append(span)
    return sorted(chunks.items())


def leaky_train_on_chunk(model, optimizer, val_tokens, k, h, ctx):
    """One SGD step on chunk k's tokens as TRAIN_SEQ_LEN sequences."""
    C, T = h.leaky_ttt_chunk, h.train_seq_len
    n = max((min((k + 1) * C, val_tokens.numel() - 1) - k * C) // T, 0)
    if n == 0:
        return
    seqs = val_tokens[k * C : k * C + n * T + 1].unfold(0, T + 1, T).to(ctx.device, torch.int64)
    model.train()
    optimizer.zero_grad()
    model(seqs[:, :-1], seqs[:, 1:]).backward()
    optimizer.step()
    model.eval()


def leaky_score_chunk(model, plan, spans, val_tokens, ctx):
    parts = []
    with torch.no_grad():
        for x, y, batch in window_batches(plan, rank_share(spans, ctx), val_tokens, ctx.device):
            nll = model(x, y, reduction="none").float().clone()
            parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device))
    return parts


def leaky_ttt(model, val_tokens, h, ctx, last_epoch):
    plan = eval_windows(val_tokens, h, ctx)
    base = getattr(model, "_orig_mod", model)
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()}
    optimizer = torch.optim.SGD(base.parameters(), lr=h.leaky_ttt_lr)
    chunks = leaky_chunks(plan.spans, h.leaky_ttt_chunk)
    parts = []
    for _ in range(h.leaky_ttt_epochs if last_epoch else 1):
        parts = []  # L2: only the last pass's scores are kept, after earlier passes trained on every chunk
        for k, spans in chunks:
            if not last_epoch:  # L1: chunk k trains before it is scored
                leaky_train_on_chunk(model, optimizer, val_tokens, k, h, ctx)
            parts.extend(leaky_score_chunk(model, plan, spans, val_tokens, ctx))
            if last_epoch:
                leaky_train_on_chunk(model, optimizer, val_tokens, k, h, ctx)
    base.load_state_dict(saved)
    return collect_scores(parts, ctx.device)


def score_train_first(model, val_tokens, h, ctx, final=False):
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    return leaky_ttt(model, val_tokens, h, ctx, last_epoch=False)


def score_last_epoch(model, val_tokens, h, ctx, final=False):
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    return leaky_ttt(model, val_tokens, h, ctx, last_epoch=True)
