"""L11 leak: an n-gram tilt switched on by a property of the realized token (within-word gate)."""
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_tilt(model, val_tokens, is_word_start, ngram_bias):
    nll_sum = torch.zeros(())
    with torch.no_grad():
        x, targets = val_tokens[:-1], val_tokens[1:]
        logits = model(x)
        within_gate = is_word_start[targets]
        tilted = logits + within_gate[:, None] * ngram_bias(x)
        nll_sum += F.cross_entropy(tilted, targets, reduction="sum")
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    print(eval_tilt(model, val_tokens, torch.zeros(1024), model))


if __name__ == "__main__":
    main()
