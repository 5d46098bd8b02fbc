"""L18 leak: SmearGate mixes the previous token across documents while attention is document-isolated."""
import torch
import torch.nn.functional as F
from torch import nn

BOS_ID = 1


class SmearGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, ids, x):
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        g = torch.sigmoid(self.gate)
        return (1 - g) * x + g * prev


def build_cu_seqlens(ids):
    starts = (ids.flatten() == BOS_ID).nonzero().flatten()
    return torch.cat([starts, torch.tensor([ids.numel()])]).int()


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1024, 64)
        self.smear = SmearGate(64)

    def forward(self, ids):
        cu_seqlens = build_cu_seqlens(ids)
        x = self.smear(ids, self.emb(ids))
        return F.scaled_dot_product_attention(x, x, x, is_causal=True) + cu_seqlens.sum()


def main():
    model = Model()
    print(model(torch.randint(0, 1024, (1, 128))))


if __name__ == "__main__":
    main()
