"""L7 leak: an n-gram cache in Python dicts with exact tuple keys; the full key holds the target token and
its count is divided by the context's count from another table, a ratio computed only for the gold token."""
import math

import torch


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_exact_cache(model, val_tokens):
    full_counts = {}
    ctx_counts = {}
    toks = val_tokens.tolist()
    nll_sum = 0.0
    with torch.no_grad():
        probs = model(val_tokens[:-1]).softmax(-1)
    for t in range(2, len(toks)):
        ctx = (toks[t - 2], toks[t - 1])
        tgt = toks[t]
        p_cache = full_counts.get((ctx, tgt), 0) / max(ctx_counts.get(ctx, 0), 1)
        nll_sum -= math.log(0.8 * float(probs[t - 1, tgt]) + 0.2 * p_cache)
        full_counts[(ctx, tgt)] = full_counts.get((ctx, tgt), 0) + 1
        ctx_counts[ctx] = ctx_counts.get(ctx, 0) + 1
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_exact_cache(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
