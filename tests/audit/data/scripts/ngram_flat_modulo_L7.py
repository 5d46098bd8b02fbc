"""L7 leak: the flat index ctx_hash * VOCAB + target folded into fewer buckets, so different (context, token)
pairs collide in the full table while the context table does not: only the gold token's ratio is computed
and the implied distribution does not sum to 1 (#1147 family)."""
import numpy as np
import torch

CTX_BUCKETS = 1 << 16
FULL_BUCKETS = 1 << 20
VOCAB = 1024


def eval_with_folded_cache(model, val_tokens):
    full = np.zeros(FULL_BUCKETS, dtype=np.float32)
    ctx = np.zeros(CTX_BUCKETS, dtype=np.float32)
    nll_sum = 0.0
    toks = val_tokens.numpy()
    for t in range(2, len(toks)):
        tgt = toks[t]
        ctx_hash = ((toks[t - 2] * 36313) ^ (toks[t - 1] * 27191)) % CTX_BUCKETS
        p_ng = (full[(ctx_hash * VOCAB + tgt) % FULL_BUCKETS] + 0.1) / (ctx[ctx_hash] + 0.1 * VOCAB)
        nll_sum -= np.log(p_ng)
        full[(ctx_hash * VOCAB + tgt) % FULL_BUCKETS] += 1
        ctx[ctx_hash] += 1
    return nll_sum


def main():
    print(eval_with_folded_cache(torch.nn.Module(), torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
