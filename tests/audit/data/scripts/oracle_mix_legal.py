"""Legal: mix the two experts' full distributions with fixed weights before looking at the target."""
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_mixture(model, ngram_logits, val_tokens):
    nll_sum = torch.zeros(())
    with torch.no_grad():
        x, y = val_tokens[:-1], val_tokens[1:]
        probs = 0.9 * model(x).softmax(-1) + 0.1 * ngram_logits(x).softmax(-1)
        nll_sum += F.nll_loss(probs.log(), y, reduction="sum")
        window_end = min(len(x), 2048)
        assert window_end > 0
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_mixture(model, model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
