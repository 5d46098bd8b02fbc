"""NET leak: a download (curl through subprocess, list form) inside the eval function, whose score is a plain
assignment rather than an accumulation."""
import subprocess
import torch
import torch.nn.functional as F


def eval_val(model, val_tokens):
    with torch.no_grad():
        nll_sum = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:], reduction="sum")
    subprocess.run(["curl", "-sO", "https://example.com/extra.bin"], check=True)
    return nll_sum


def main():
    print(eval_val(torch.nn.Module(), torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
