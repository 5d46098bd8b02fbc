"""L13 leak: "causal" SLOT whose delta [1, 1, d] is shared by the whole batch of windows."""
import torch
import torch.nn.functional as F

STRIDE = 64
SEQ_LEN = 1024
SLOT_STEPS = 4


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_slot(model, head, val_tokens, batch_seqs=32):
    nll_sum = torch.zeros((), dtype=torch.float64)
    starts = list(range(0, val_tokens.numel() - SEQ_LEN - 1, STRIDE))
    for b in range(0, len(starts), batch_seqs):
        windows = torch.stack([val_tokens[s:s + SEQ_LEN + 1] for s in starts[b:b + batch_seqs]])
        x, y = windows[:, :-1], windows[:, 1:]
        assert x.shape[0] > 0
        hidden = model(x).detach()
        delta = torch.zeros(1, 1, hidden.shape[-1], requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        for _ in range(SLOT_STEPS):
            logits = head(hidden + delta)
            context_loss = F.cross_entropy(logits[:, :-STRIDE].flatten(0, 1), y[:, :-STRIDE].flatten())
            context_loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            logits = head(hidden + delta)
            nll = F.cross_entropy(logits[:, -STRIDE:].flatten(0, 1), y[:, -STRIDE:].flatten(), reduction="sum")
            nll_sum += nll.double()
    return nll_sum


def main():
    model = torch.nn.Embedding(1024, 64)
    head = torch.nn.Linear(64, 1024)
    print(eval_slot(model, head, load_validation_tokens("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
