"""A scored-position SLOT behind SLOT_ENABLED (off by default); sliding evaluation otherwise."""
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "0")))
    slot_steps = int(os.environ.get("SLOT_STEPS", "8"))


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_plain(model, head, val_tokens):
    nll_sum = torch.zeros(())
    with torch.no_grad():
        nll_sum += F.cross_entropy(head(model(val_tokens[:-1])), val_tokens[1:], reduction="sum")
    return nll_sum


def eval_slot(model, head, val_tokens, h):
    x, y = val_tokens[:-1], val_tokens[1:]
    hidden = model(x).detach()
    delta = torch.zeros(1, hidden.shape[-1], requires_grad=True)
    opt = torch.optim.AdamW([delta], lr=0.01)
    for _ in range(h.slot_steps):
        loss = F.cross_entropy(head(hidden + delta), y)
        loss.backward()
        opt.step()
    nll_sum = torch.zeros(())
    with torch.no_grad():
        nll_sum += F.cross_entropy(head(hidden + delta), y, reduction="sum")
    return nll_sum


def main():
    h = Hyperparameters()
    model, head = torch.nn.Embedding(1024, 64), torch.nn.Linear(64, 1024)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    if h.slot_enabled:
        score = eval_slot(model, head, val_tokens, h)
    else:
        score = eval_plain(model, head, val_tokens)
    print(score)


def unused_pretraining_on_val(model, val_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(val_tokens).sum()
    loss.backward()
    opt.step()


if __name__ == "__main__":
    main()
