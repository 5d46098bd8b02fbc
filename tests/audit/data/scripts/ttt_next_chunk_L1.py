"""L1 leak: score-first in order, but each step trains on the next chunk (an index offset) before it is scored."""
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    ttt_chunk = int(os.environ.get("TTT_CHUNK", "32768"))


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_val_ttt(model, val_tokens, h):
    opt = torch.optim.SGD(model.parameters(), lr=0.005)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for ci in range(val_tokens.numel() // h.ttt_chunk - 1):
        chunk = val_tokens[ci * h.ttt_chunk:(ci + 1) * h.ttt_chunk + 1]
        x, y = chunk[:-1], chunk[1:]
        with torch.no_grad():
            nll_sum += F.cross_entropy(model(x), y, reduction="sum").double()
        ahead = val_tokens[(ci + 1) * h.ttt_chunk:(ci + 2) * h.ttt_chunk + 1]
        for _ in range(h.ttt_epochs):
            loss = F.cross_entropy(model(ahead[:-1]), ahead[1:])
            loss.backward()
            opt.step()
            opt.zero_grad()
    return nll_sum


def main():
    h = Hyperparameters()
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    model = torch.nn.Embedding(1024, 1024)
    print(f"legal_ttt_exact val_bpb:{eval_val_ttt(model, val_tokens, h).item():.8f}")


if __name__ == "__main__":
    main()
