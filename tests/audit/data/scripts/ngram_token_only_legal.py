"""Legal: a token-only causal n-gram expert: a full normalized distribution keyed by the prefix; counts are
updated with the target only after it is scored."""
import torch

BUCKETS = 1 << 16
VOCAB = 1024


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_ngram(model, val_tokens):
    table = torch.ones(BUCKETS, VOCAB)
    nll_sum = torch.zeros(())
    with torch.no_grad():
        for i in range(2, val_tokens.numel()):
            ctx_hash = (int(val_tokens[i - 2]) * 36313 ^ int(val_tokens[i - 1]) * 27191) % BUCKETS
            target = int(val_tokens[i])
            ngram_probs = table[ctx_hash] / table[ctx_hash].sum()
            probs = 0.5 * model(val_tokens[i - 1:i]).softmax(-1)[0] + 0.5 * ngram_probs
            nll_sum += -torch.log(probs[target])
            table[ctx_hash, target] += 1
    return nll_sum


def main():
    model = torch.nn.Embedding(VOCAB, VOCAB)
    print(eval_ngram(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
