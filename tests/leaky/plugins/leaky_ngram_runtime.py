# ==================================================================================================
# tests/leaky: a bigram cache mixed into the model's distribution, two illegal ways: the mixing weight keyed on
# the realized target (L7, the #779 family) and a mixture that is never renormalised (L8). The cache itself is
# causal (scored pairs enter it after their batch). Never shipped: the verifier's C2 probes must fail them.
# ==================================================================================================
from golfc.runtime.data import collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def leaky_ngram(model, val_tokens, h, ctx, gated):
    plan = eval_windows(val_tokens, h, ctx)
    gpt = getattr(model, "_orig_mod", model)
    V, lam = h.vocab_size, h.leaky_ngram_lambda
    counts = torch.zeros(V, V, device=ctx.device)  # (previous, target) pairs already scored
    parts = []
    with torch.no_grad():
        for x, y, batch in window_batches(plan, rank_share(plan.spans, ctx), val_tokens, ctx.device):
            p_model = torch.softmax(gpt.logits(gpt.hidden(x)).float(), dim=-1)  # (B, T, V)
            if gated:  # L7: the cache's weight depends on whether (previous, realized target) was seen
                following = counts[x]  # (B, T, V)
                p_cache = following / following.sum(-1, keepdim=True).clamp_min(1.0)
                weight = lam * (counts[x, y] > 0).float()[..., None]
                p = (1 - weight) * p_model + weight * p_cache
            else:  # L8: a unigram expert added on top of the model's distribution: it sums to 1 + lambda
                unigram = (counts.sum(0) + 1) / (counts.sum() + V)
                p = p_model + lam * unigram
            logp = torch.log(p)
            probe_distribution(logp)  # what is scored, for the verifier's probes
            nll = -logp.gather(-1, y[..., None])[..., 0]
            parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device))
            for i, (start, first_scored) in enumerate(batch):  # scored first, then cached
                keep = first_scored - start
                counts.index_put_((x[i, keep:], y[i, keep:]), torch.ones(x.size(1) - keep, device=ctx.device),
                                  accumulate=True)
    return collect_scores(parts, ctx.device)


def score_target_keyed(model, val_tokens, h, ctx, final=False):
    return leaky_ngram(model, val_tokens, h, ctx, gated=True)


def score_unnormalized(model, val_tokens, h, ctx, final=False):
    return leaky_ngram(model, val_tokens, h, ctx, gated=False)
