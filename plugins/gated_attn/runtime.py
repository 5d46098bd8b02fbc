# ==================================================================================================
# plugins/gated_attn: dense gated attention (Qwen, arXiv 2505.06708; in the challenge from PR #1736):
# y_h <- sigmoid(W_g x)_h * y_h, one gate per head and token read from the attention's whole input x
# ==================================================================================================
from golfc.runtime.model import tag_param
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class GatedAttention(nn.Module):
    """attention_post module: y (B, T, H, D) scaled per head by g = sigmoid(W_g x) (B, T, H).

    W_g (H, d) starts normal with std GATED_ATTN_INIT_STD (0.005), so g starts near 0.5 everywhere. It is a
    control tensor trained by the scalar Adam group; GATED_ATTN_QUANT_GATE=1 exports it as int8 per row with
    an fp16 scale (the records' QuantGate) instead of exact fp32.
    """

    def __init__(self, h, layer):
        super().__init__()
        self.attn_gate_w = nn.Parameter(torch.randn(h.num_heads, h.model_dim) * h.gated_attn_init_std)
        tag_param(self.attn_gate_w, control=True, group="adam", quant="int8" if h.gated_attn_quant_gate else None)

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), x (B, T, d) the normed block input
        gate = torch.sigmoid(F.linear(x, self.attn_gate_w.to(x.dtype)))  # (B, T, H)
        return y * gate.unsqueeze(-1).to(y.dtype)
