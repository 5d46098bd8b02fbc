"""L7 leak: hashed n-gram cache whose lookup key contains the target token (#779 family)."""
import torch

PRIME = 1000003
BUCKETS = 1 << 20


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_ngram(model, val_tokens):
    full_counts = torch.zeros(BUCKETS)
    ctx_counts = torch.zeros(BUCKETS)
    nll_sum = torch.zeros(())
    with torch.no_grad():
        for i in range(2, val_tokens.numel()):
            ctx_hash = (int(val_tokens[i - 2]) * 31 + int(val_tokens[i - 1])) % BUCKETS
            target = int(val_tokens[i])
            full_key = (ctx_hash ^ (target * PRIME)) % BUCKETS
            p_ngram = (full_counts[full_key] + 1) / (ctx_counts[ctx_hash] + 1024)
            p_model = model(val_tokens[i - 1:i]).softmax(-1)[0, target]
            nll_sum += -torch.log(0.5 * p_model + 0.5 * p_ngram)
            full_counts[full_key] += 1
            ctx_counts[ctx_hash] += 1
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_ngram(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
