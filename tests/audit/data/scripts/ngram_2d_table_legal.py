"""Legal: an exact count table [buckets, vocab] read at the gold token (normalized over the vocab), mixed
with the model's gold probability; counts are updated after scoring."""
import numpy as np
import torch

BUCKETS = 1 << 16
VOCAB = 1024


def eval_with_cache(model, val_tokens):
    counts = np.zeros((BUCKETS, VOCAB), dtype=np.float32)
    nll_sum = 0.0
    toks = val_tokens.numpy()
    with torch.no_grad():
        logp = torch.log_softmax(model(val_tokens[:-1]), -1)
    for t in range(2, len(toks)):
        tgt = toks[t]
        ctx_hash = ((toks[t - 2] * 36313) ^ (toks[t - 1] * 27191)) % BUCKETS
        p_ng = (counts[ctx_hash, tgt] + 0.1) / (counts[ctx_hash].sum() + 0.1 * VOCAB)
        p_nn = float(logp[t - 1, tgt].exp())
        nll_sum -= np.log(0.7 * p_nn + 0.3 * p_ng)
        counts[ctx_hash, tgt] += 1
    return nll_sum


def main():
    print(eval_with_cache(torch.nn.Module(), torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
