# ==================================================================================================
# plugins/flash_attn: the causal attention kernel through flash-attn's own kernels: FlashAttention-3
# (flash_attn_interface, Hopper) or FlashAttention-4 (flash_attn.cute), as the records import FA3 (PR #122 onward:
# -9% step time). The module is imported when the program starts, by the one import shared with window
# (plugins/sdpa_attention/flash); without it the run stops there, in one line.
# ==================================================================================================
from golfc_plugins.sdpa_attention.flash import (  # editors and tests only: blanked when emitted
    flash_attn_call,
    flash_attn_required,
)

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

FLASH_ATTN_NAME, FLASH_ATTN_FUNC = flash_attn_required(
    Hyperparameters.flash_attn_impl, f"plugin flash_attn (FLASH_ATTN_IMPL={Hyperparameters.flash_attn_impl})",
    "a build without flash_attn (the default sdpa_attention)")


def flash_attention(q, k, v, h=None, layer=None, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D): causal, scale 1/sqrt(D), GQA without expanding k/v.

    flash_attn_call hands flash-attn the (B, T, H, D) memory behind the core's q, k and v without copies and reads
    its output back in q's memory order, as SDPA returns it. Its kernels take bf16/fp16 only: on CUDA, fp32 inputs
    are cast to the autocast dtype (what SDPA computes in under autocast) or, outside autocast, to bf16 and the
    result back to fp32."""
    out_dtype = q.dtype
    if q.is_cuda and q.dtype not in (torch.bfloat16, torch.float16):
        autocast = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda") if autocast else torch.bfloat16
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        out_dtype = dtype if autocast else out_dtype
    return flash_attn_call(FLASH_ATTN_FUNC, q, k, v, causal=True).to(out_dtype)  # (B, H, T, D) view
