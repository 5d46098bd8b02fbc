"""Legal: the exact [buckets, vocab] count table stored flat (row = context hash, column = token) and read at
the gold token, normalized over its row; counts are updated after scoring."""
import numpy as np
import torch

BUCKETS = 1 << 16
VOCAB = 1024


def eval_with_flat_cache(model, val_tokens):
    counts = np.zeros(BUCKETS * VOCAB, dtype=np.float32)
    nll_sum = 0.0
    toks = val_tokens.numpy()
    with torch.no_grad():
        logp = torch.log_softmax(model(val_tokens[:-1]), -1)
    for t in range(2, len(toks)):
        tgt = toks[t]
        ctx_hash = ((toks[t - 2] * 36313) ^ (toks[t - 1] * 27191)) % BUCKETS
        row = ctx_hash * VOCAB
        p_ng = (counts[ctx_hash * 1024 + tgt] + 0.1) / (counts[row : row + VOCAB].sum() + 0.1 * VOCAB)
        p_nn = float(logp[t - 1, tgt].exp())
        nll_sum -= np.log(0.7 * p_nn + 0.3 * p_ng)
        idx = tgt + row
        counts[idx] += 1
    return nll_sum


def main():
    print(eval_with_flat_cache(torch.nn.Module(), torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
