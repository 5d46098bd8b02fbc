# ==================================================================================================
# plugins/xsa: exclusive self-attention (arXiv 2603.09078; in the challenge from PR #265) on the last
# XSA_LAST_N layers: y <- y - (y . v_hat) v_hat with v_hat the token's own unit value vector
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def exclusive_self_attention(y, v):
    """y (B, T, H, D) attention output, v (B, T, Hkv, D) the same tokens' values -> y (B, T, H, D).

    The H query heads share Hkv value heads in groups of H // Hkv (GQA): each group is projected against its
    own value head through a (B, T, Hkv, H // Hkv, D) view, so no value is repeated per query head.
    """
    B, T, H, D = y.shape
    Hkv = v.size(2)
    groups = y.reshape(B, T, Hkv, H // Hkv, D)  # (B, T, Hkv, G, D)
    v_hat = F.normalize(v, dim=-1).unsqueeze(-2)  # (B, T, Hkv, 1, D)
    along_own_value = (groups * v_hat).sum(-1, keepdim=True) * v_hat  # (B, T, Hkv, G, D)
    return (groups - along_own_value).reshape(B, T, H, D)


class ExclusiveSelfAttention(nn.Module):
    """attention_post module: XSA on this layer when it is one of the last XSA_LAST_N, else the identity.
    No parameters (the state dict gains nothing)."""

    def __init__(self, h, layer):
        super().__init__()
        self.active = layer >= h.num_layers - h.xsa_last_n

    def forward(self, y, v, x, fctx=None):  # y (B, T, H, D), v (B, T, Hkv, D), x (B, T, d) unused
        return exclusive_self_attention(y, v) if self.active else y
