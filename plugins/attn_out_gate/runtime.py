# ==================================================================================================
# plugins/attn_out_gate: the attention output gate of PR #1667: y_h <- 2 sigmoid(W x[:window])_h * y_h,
# W (H, window) zero-init, so every layer's attention is unchanged at init
# ==================================================================================================
from golfc.runtime.model import tag_param
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class AttentionOutputGate(nn.Module):
    """attention_post module: y (B, T, H, D) scaled per head by g = 2 sigmoid(W x[:, :, :window]) (B, T, H).

    The gate reads only the first ATTN_OUT_GATE_WINDOW (12) dims of the attention's input x, so it costs
    H * 12 parameters a layer; W starts at zero (g = 1: the identity). A control tensor (fp32, scalar Adam).
    """

    def __init__(self, h, layer):
        super().__init__()
        self.window = min(h.attn_out_gate_window, h.model_dim)
        self.attn_out_gate_w = tag_param(nn.Parameter(torch.zeros(h.num_heads, self.window)), control=True, group="adam")

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), x (B, T, d) the normed block input
        gate = 2.0 * torch.sigmoid(F.linear(x[..., : self.window], self.attn_out_gate_w.to(x.dtype)))  # (B, T, H)
        return y * gate.unsqueeze(-1).to(y.dtype)
