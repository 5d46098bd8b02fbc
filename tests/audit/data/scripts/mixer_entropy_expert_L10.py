"""L10 leak: a Hedge-style mixer whose experts are the gold token's NLL under the model and a bigram table,
plus the model's entropy as a third 'expert' (a scalar per position, not a distribution)."""
import torch
import torch.nn.functional as F

VOCAB = 1024


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_hedge(model, val_tokens, bigram_logp, log_w):
    with torch.no_grad():
        x, y = val_tokens[:-1], val_tokens[1:]
        logp = F.log_softmax(model(x), -1)
        model_nll = -logp.gather(-1, y[:, None]).squeeze(-1)
        bigram_nll = -bigram_logp[x, y]
        entropy_nll = -(logp.exp() * logp).sum(-1)
        experts = torch.stack([model_nll, bigram_nll, entropy_nll], dim=-1)
        mixed = -(log_w - experts).logsumexp(-1)
        return mixed.double().sum()


def main():
    model = torch.nn.Embedding(VOCAB, VOCAB)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    print(eval_hedge(model, val_tokens, torch.zeros(VOCAB, VOCAB), torch.zeros(3)))


if __name__ == "__main__":
    main()
