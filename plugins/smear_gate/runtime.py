# ==================================================================================================
# plugins/smear_gate: SmearGate v2 on the embedding before its norm (PR #1667), BOS-masked (PR #1851):
# e_t += lambda * sigmoid(W e_t[:window]) * e_{t-1} * (ids_t != BOS)
# ==================================================================================================
from golfc.runtime.model import CONTROL_TENSOR_NAME_PATTERNS
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

CONTROL_TENSOR_NAME_PATTERNS.extend(["smear_gate_w", "smear_lambda"])  # fp32 in training and in the artifact
SMEAR_BOS_ID = 1  # the shards' document start (core/data: each document is [BOS=1] + tokens)


class SmearGate(nn.Module):
    """e (B, T, d) -> e with a gated share of the previous position's embedding added to each position.

    The gate reads the first SMEAR_GATE_WINDOW dims of the position's own embedding; W (1, window) and the
    scalar lambda start at zero, so the module is the identity at init. Position 0 of a sequence has no
    previous token and is left alone; with SMEAR_BOS_MASK=1 a BOS (a new document) is left alone too, so the
    last token of document N never leaks into document N + 1 (in training and in every evaluation, TTT
    included: they all run this forward).
    """

    def __init__(self, h):
        super().__init__()
        self.window, self.bos_mask = min(h.smear_gate_window, h.model_dim), h.smear_bos_mask
        self.smear_gate_w = nn.Parameter(torch.zeros(1, self.window, dtype=torch.float32))
        self.smear_lambda = nn.Parameter(torch.zeros((), dtype=torch.float32))

    def forward(self, ids, e):
        cur, prev = e[:, 1:], e[:, :-1]  # (B, T-1, d): position t and t - 1
        gate = torch.sigmoid(F.linear(cur[..., : self.window], self.smear_gate_w.to(e.dtype)))  # (B, T-1, 1)
        gate = self.smear_lambda.to(e.dtype) * gate
        if self.bos_mask:
            gate = gate * (ids[:, 1:] != SMEAR_BOS_ID).unsqueeze(-1).to(e.dtype)
        return torch.cat((e[:, :1], cur + gate * prev), dim=1)
