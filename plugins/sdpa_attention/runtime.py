# ==================================================================================================
# plugins/sdpa_attention: causal scaled-dot-product attention with grouped-query attention
# ==================================================================================================
from torch.nn.attention import SDPBackend, sdpa_kernel

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

SDPA_BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
# enable_gqa arrived in torch 2.5; the memory-efficient kernel rejects it, so for it (and on older torch)
# k and v are expanded to all query heads instead: same result, more memory. cuDNN takes GQA natively,
# faster than expanded k and v (bench/RESULTS.md).
SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)
SDPA_NATIVE_GQA = ("auto", "cudnn", "flash", "math")


def sdpa_attention(q, k, v, h, layer=None, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D); causal, scale 1/sqrt(D); the same on every layer."""
    backend = h.sdpa_backend  # one of its declared choices: the hparams section refuses others at start-up
    gqa = q.size(1) != k.size(1)
    if gqa and not (SDPA_HAS_GQA and backend in SDPA_NATIVE_GQA):
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)  # (B, H, T, D)
        gqa = False
    kwargs = {"enable_gqa": True} if gqa else {}
    if backend == "auto":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kwargs)
    with sdpa_kernel(SDPA_BACKENDS[backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kwargs)
