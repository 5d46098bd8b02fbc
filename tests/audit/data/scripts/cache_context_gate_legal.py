"""Legal: the mixture weight switches on whether the *context* is in the cache (known before the target);
the cache holds a distribution over the vocabulary for that context; updated after scoring."""
import math

import torch

VOCAB = 1024


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_context_gate(model, val_tokens):
    toks = val_tokens.tolist()
    seen = {}
    nll_sum = 0.0
    with torch.no_grad():
        probs = model(val_tokens[:-1]).softmax(-1)
    for t in range(1, len(toks)):
        prev = toks[t - 1]
        tgt = toks[t]
        if prev in seen:
            row = seen[prev]
            dist = 0.7 * probs[t - 1] + 0.3 * row / row.sum()
        else:
            dist = probs[t - 1]
        nll_sum -= math.log(float(dist[tgt]))
        if prev not in seen:
            seen[prev] = torch.full((VOCAB,), 0.1)
        seen[prev][tgt] += 1
    return nll_sum


def main():
    model = torch.nn.Embedding(VOCAB, VOCAB)
    print(eval_context_gate(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
