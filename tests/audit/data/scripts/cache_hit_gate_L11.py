"""L11 leak: a recent-token cache consulted with the target itself; the mixture weight switches on whether
the realized token is in the cache, so the gold token's probability depends on the answer."""
import math

import torch


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_cache_hit(model, val_tokens, window=512):
    toks = val_tokens.tolist()
    recent = set()
    nll_sum = 0.0
    with torch.no_grad():
        probs = model(val_tokens[:-1]).softmax(-1)
    for t in range(1, len(toks)):
        tgt = toks[t]
        p_model = float(probs[t - 1, tgt])
        p = 0.7 * p_model + 0.3 if tgt in recent else p_model
        nll_sum -= math.log(p)
        recent.add(tgt)
        if t > window:
            recent.discard(toks[t - window])
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_cache_hit(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
