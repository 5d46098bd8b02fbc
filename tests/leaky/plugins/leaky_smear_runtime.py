# ==================================================================================================
# tests/leaky: document-isolated attention (a block-diagonal causal mask from the BOS tokens) with a SmearGate
# that mixes the previous token's embedding into each position. Without the BOS mask the last token of document
# k-1 reaches document k's BOS position (L18, PR #1797); LEAKY_SMEAR_BOS_MASK=1 is the fixed form (PR #1851).
# Never shipped: the verifier's documents probe must fail the unmasked form and pass the masked one.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

DOCUMENT_ISOLATED = True  # the claim the verifier's documents probe checks: no score sees another document
LEAKY_DOC_IDS = {"ids": None}  # the ids of the running forward, for the kernel (the kernel slot gets no ids)


class LeakyRememberIds(nn.Module):
    """embedding_pre_norm: passes the embedding through and remembers the forward's ids."""

    def __init__(self, h):
        super().__init__()

    def forward(self, ids, e):
        LEAKY_DOC_IDS["ids"] = ids
        return e


def leaky_document_attention(q, k, v, h, layer=None, fctx=None):
    """Causal attention inside each document: position t sees s <= t of its own document only."""
    ids = LEAKY_DOC_IDS["ids"]
    doc = torch.cumsum((ids == 1).int(), dim=1)  # (B, T) document index within the window
    T = ids.size(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    mask = causal[None] & (doc[:, :, None] == doc[:, None, :])  # (B, T, T)
    groups = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])


class LeakySmearGate(nn.Module):
    """embedding_extras: x_t + g * (x_{t-1} - x_t), g = sigmoid(gate) (0.5 at init); with
    LEAKY_SMEAR_BOS_MASK=1, g = 0 at BOS positions (a document's first position sees nothing before it)."""

    def __init__(self, h):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(h.model_dim))
        self.mask_bos = h.leaky_smear_bos_mask

    def forward(self, ids, x):
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        g = torch.sigmoid(self.gate).to(x.dtype)
        if self.mask_bos:
            g = g * (ids != 1).to(x.dtype)[..., None]
        return x + g * (prev - x)
