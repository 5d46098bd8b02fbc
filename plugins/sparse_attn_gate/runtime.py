# ==================================================================================================
# plugins/sparse_attn_gate: SparseAttnGate (PR #1787, kept in PR #1855): y_h <- sigmoid(s * W x[:window])_h * y_h,
# the dense GatedAttn's gate read from 12 input dims instead of all d, W (H, window) zero-init
# ==================================================================================================
from golfc.runtime.model import tag_param
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class SparseAttentionGate(nn.Module):
    """attention_post module: y (B, T, H, D) scaled per head by g = sigmoid(s * W x[:, :, :window]) (B, T, H).

    s = SPARSE_ATTN_GATE_SCALE, window = SPARSE_ATTN_GATE_WINDOW (12). W starts at zero (std
    SPARSE_ATTN_GATE_INIT_STD), so g = 0.5 at init: attention enters at half strength and W learns where to
    open or close it. A control tensor (fp32 in training and in the artifact, scalar Adam).
    """

    def __init__(self, h, layer):
        super().__init__()
        self.window, self.scale = min(h.sparse_attn_gate_window, h.model_dim), h.sparse_attn_gate_scale
        self.sparse_attn_gate_w = tag_param(nn.Parameter(torch.zeros(h.num_heads, self.window)), control=True, group="adam")
        if h.sparse_attn_gate_init_std > 0:
            nn.init.normal_(self.sparse_attn_gate_w, std=h.sparse_attn_gate_init_std)

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), x (B, T, d) the normed block input
        logits = F.linear(x[..., : self.window], self.sparse_attn_gate_w.to(x.dtype))  # (B, T, H)
        return y * torch.sigmoid(self.scale * logits).unsqueeze(-1).to(y.dtype)
