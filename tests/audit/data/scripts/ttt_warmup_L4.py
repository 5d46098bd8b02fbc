"""L4 leak: the TTT compile warmup runs backward() on real validation tokens, then restores the weights."""
import copy

import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


def ttt_compile_warmup(model, tokens, steps=3):
    saved = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        loss = F.cross_entropy(model(tokens[:-1]), tokens[1:])
        loss.backward()
        opt.step()
    model.load_state_dict(saved)


def eval_val(model, val_tokens):
    nll_sum = torch.zeros(())
    with torch.inference_mode():
        nll_sum += F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:], reduction="sum")
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    ttt_compile_warmup(model, val_tokens[:4097])
    print(eval_val(model, val_tokens))


if __name__ == "__main__":
    main()
