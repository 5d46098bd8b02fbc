"""L7: target enters the hash key via a helper function."""
import numpy as np
import torch

MOD = (1 << 22) - 1


def ngram_key(ctx_a, ctx_b, tok):
    return ((ctx_a * 36313) ^ (ctx_b * 27191) ^ (tok * 51647)) & MOD


def eval_with_cache(model, val_tokens):
    counts = np.zeros(MOD + 1, dtype=np.float32)
    ctx_counts = np.zeros(MOD + 1, dtype=np.float32)
    nll_sum = 0.0
    toks = val_tokens.numpy()
    with torch.no_grad():
        logp = torch.log_softmax(model(val_tokens[:-1]), -1)
    for t in range(2, len(toks)):
        nxt = toks[t]
        ck = ((toks[t - 2] * 36313) ^ (toks[t - 1] * 27191)) & MOD
        fk = ngram_key(toks[t - 2], toks[t - 1], nxt)
        p_ng = (counts[fk] + 0.1) / (ctx_counts[ck] + 0.1 * 1024)
        p_nn = float(logp[t - 1, nxt].exp())
        nll_sum -= np.log(0.7 * p_nn + 0.3 * p_ng)
        counts[fk] += 1
        ctx_counts[ck] += 1
    return nll_sum


def main():
    print(eval_with_cache(torch.nn.Module(), torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
