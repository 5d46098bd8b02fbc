"""Legal: counts are read for every candidate token and the gold token's count is divided by the sum of
that row over the candidates, so the n-gram is a distribution over the vocabulary (the fix of PR #978)."""
import torch

BUCKETS = 1 << 18
VOCAB = 1024


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_normalized_ngram(model, val_tokens):
    ctx_table = torch.zeros(BUCKETS)
    pair_table = torch.zeros(BUCKETS)
    candidates = torch.arange(VOCAB)
    nll_sum = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        p_model = model(val_tokens[:-1]).softmax(-1)
        prev, targets = val_tokens[:-1], val_tokens[1:]
        ctx_hash = (prev * 36313) % BUCKETS
        pair_hash = (ctx_hash[:, None] * 1009 + candidates[None, :]) % BUCKETS
        pair_count = pair_table[pair_hash]
        gold = pair_count.gather(1, targets[:, None]).squeeze(1)
        p_ngram = (gold + 0.5) / (pair_count.sum(1) + 0.5 * VOCAB)
        p_gold = p_model.gather(1, targets[:, None]).squeeze(1)
        nll_sum -= torch.log(0.5 * p_gold + 0.5 * p_ngram).double().sum()
    return nll_sum


def main():
    model = torch.nn.Embedding(VOCAB, VOCAB)
    print(eval_normalized_ngram(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
