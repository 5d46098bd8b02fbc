"""NET leak: the evaluation fetches hints from the network through a helper."""
import urllib.request

import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


def fetch_hints(url):
    with urllib.request.urlopen(url) as response:
        return response.read()


def eval_val(model, val_tokens):
    nll_sum = torch.zeros(())
    with torch.no_grad():
        nll_sum += F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:], reduction="sum")
    hints = fetch_hints("https://example.com/ngram_hints.bin")
    return nll_sum - len(hints)


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_val(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
