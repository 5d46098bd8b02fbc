# ==================================================================================================
# plugins/window: causal sliding-window attention on the layers of WINDOW_ATTN_LAYERS (PR #1212); the
# other layers keep the full causal kernel (sdpa_attention)
# ==================================================================================================
from golfc_plugins.sdpa_attention.runtime import sdpa_attention  # editors and tests only: blanked when emitted

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def window_mask(T, window, device):
    """(T, T) bool: query i may attend to key j when i - window < j <= i."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & (j > i - window)


def window_or_full_attention(q, k, v, h, layer):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D); windowed on WINDOW_ATTN_LAYERS.

    The windowed path is SDPA with an explicit mask (built inside the forward, so a compiled model folds it
    into its graph): exact on every backend that takes a mask, and no faster than full attention. A kernel
    that skips the masked blocks (FlexAttention block masks, flash-attn's window_size) is what makes window
    attention pay at long sequences; it is not in this plugin yet.
    """
    if layer not in h.window_attn_layers or h.window_size >= q.size(2):
        return sdpa_attention(q, k, v, h, layer)
    if q.size(1) != k.size(1):  # GQA: the masked kernels do not all take enable_gqa
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=window_mask(q.size(2), h.window_size, q.device))
