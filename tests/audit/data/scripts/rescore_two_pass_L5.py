"""L5 leak: score every chunk, build a cache over all of val, then rescore into the same accumulator."""
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


@torch.no_grad()
def eval_two_pass(model, val_tokens, chunk=4096):
    nll_sum = torch.zeros((), dtype=torch.float64)
    cache = {}
    for start in range(0, val_tokens.numel() - 1, chunk):
        x, y = val_tokens[start:start + chunk], val_tokens[start + 1:start + chunk + 1]
        nll_sum += F.cross_entropy(model(x), y, reduction="sum").double()
        cache[start] = x
    nll_sum.zero_()
    for start in range(0, val_tokens.numel() - 1, chunk):
        x, y = val_tokens[start:start + chunk], val_tokens[start + 1:start + chunk + 1]
        nll_sum += F.cross_entropy(model(x) + len(cache), y, reduction="sum").double()
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    print(eval_two_pass(model, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
