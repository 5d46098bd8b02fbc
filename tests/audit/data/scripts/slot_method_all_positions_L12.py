"""L12 leak: per-window SLOT (a method) whose delta is fit on every position; the only slice on the fit path is
the input/target shift it shares with the score."""
import torch
import torch.nn.functional as F


class SlotEvaluator:
    def __init__(self, model, steps=8, stride=64, seq_len=2048, batch_size=32):
        self.model = model
        self.steps = steps
        self.stride = stride
        self.seq_len = seq_len
        self.batch_size = batch_size

    def evaluate(self, val_tokens):
        nll_total = torch.zeros((), dtype=torch.float64)
        starts = list(range(0, val_tokens.numel() - self.seq_len - 1, self.stride))
        for b in range(0, len(starts), self.batch_size):
            group = starts[b:b + self.batch_size]
            seqs = torch.stack([val_tokens[s:s + self.seq_len + 1] for s in group])
            inp, tgt = seqs[:, :-1], seqs[:, 1:]
            with torch.no_grad():
                h = self.model.hidden(inp)
            d = torch.zeros(inp.size(0), 1, h.size(-1), device=h.device, requires_grad=True)
            opt = torch.optim.AdamW([d], lr=3e-3)
            ctx_mask = torch.zeros_like(tgt, dtype=torch.bool)
            ctx_mask[:, :-self.stride] = True
            for _ in range(self.steps):
                lg = self.model.head(h + d)
                l = F.cross_entropy(lg.reshape(-1, lg.size(-1)), tgt.reshape(-1))
                opt.zero_grad()
                l.backward()
                opt.step()
            with torch.no_grad():
                lg = self.model.head(h + d)
                per_tok = F.cross_entropy(lg[:, -self.stride:].reshape(-1, lg.size(-1)), tgt[:, -self.stride:].reshape(-1), reduction="none")
                nll_total += per_tok.sum().double()
        return nll_total


def main():
    ev = SlotEvaluator(torch.nn.Module())
    print(ev.evaluate(torch.load("./data/fineweb_val_000000.bin")))


if __name__ == "__main__":
    main()
