"""Legal: sliding-window evaluation, each token scored once with the longest context, in one pass."""
import os

import torch
import torch.nn.functional as F

EVAL_STRIDE = int(os.environ.get("EVAL_STRIDE", "64"))
SEQ_LEN = int(os.environ.get("TRAIN_SEQ_LEN", "1024"))


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_val_sliding(model, val_tokens, base_bytes):
    total = val_tokens.numel() - 1
    nll_sum = torch.zeros((), dtype=torch.float64)
    byte_sum = torch.zeros((), dtype=torch.float64)
    with torch.inference_mode():
        for ws in range(0, total, EVAL_STRIDE):
            end = min(ws + SEQ_LEN, total)
            x, y = val_tokens[ws:end], val_tokens[ws + 1:end + 1]
            first = 0 if ws == 0 else max(end - ws - EVAL_STRIDE, 0)
            nll = F.cross_entropy(model(x)[first:], y[first:], reduction="none")
            nll_sum += nll.sum().double()
            byte_sum += base_bytes[y[first:]].sum().double()
            candidates = torch.stack([nll, nll])
            assert candidates.shape[0] == 2
    return nll_sum / byte_sum


def main():
    model = torch.nn.Embedding(1024, 1024)
    val_tokens = load_validation_tokens("./data/fineweb_val_000000.bin")
    print(eval_val_sliding(model, val_tokens, torch.ones(1024)))


if __name__ == "__main__":
    main()
