# ==================================================================================================
# plugins/flash_attn: the causal attention kernel through flash-attn's own kernels: FlashAttention-3
# (flash_attn_interface, Hopper) or FlashAttention-4 (flash_attn.cute), as the records import FA3 (PR #122 onward:
# -9% step time). The module is imported when the program starts; without it the run stops there, in one line.
# ==================================================================================================
import importlib

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

FLASH_ATTN_MODULES = {"fa3": "flash_attn_interface", "fa4": "flash_attn.cute"}  # FLASH_ATTN_IMPL -> module


def flash_attn_candidates(choice):
    """The modules FLASH_ATTN_IMPL allows, in the order they are tried (auto: FA3, then FA4)."""
    return list(FLASH_ATTN_MODULES.values()) if choice == "auto" else [FLASH_ATTN_MODULES[choice]]


def flash_attn_import(choice):
    """(module name, its flash_attn_func) for the first candidate that imports and has one; (None, None) if none."""
    for name in flash_attn_candidates(choice):
        try:
            func = getattr(importlib.import_module(name), "flash_attn_func", None)
        except (ImportError, OSError, RuntimeError):  # absent, or built for another CUDA / torch
            continue
        if func is not None:
            return name, func
    return None, None


FLASH_ATTN_NAME, FLASH_ATTN_FUNC = flash_attn_import(Hyperparameters.flash_attn_impl)
if FLASH_ATTN_FUNC is None:  # at start-up, before any data or model: one line, exit code 2
    tried = " or ".join(flash_attn_candidates(Hyperparameters.flash_attn_impl))
    print(f"error: plugin flash_attn: cannot import {tried} (FLASH_ATTN_IMPL={Hyperparameters.flash_attn_impl}); "
          "expected FlashAttention-3 or -4 installed, or a build without flash_attn (the default sdpa_attention)",
          file=sys.stderr)
    sys.exit(2)


def flash_attention(q, k, v, h=None, layer=None, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D): causal, scale 1/sqrt(D), GQA without expanding k/v.

    flash-attn takes (B, T, H, D): the core's q, k and v are transposed views of that memory, so handing it
    .transpose(1, 2) copies nothing, and its output read back as (B, H, T, D) is in q's memory order, as SDPA
    returns it. Its kernels take bf16/fp16 only: on CUDA, fp32 inputs are cast to the autocast dtype (what SDPA
    computes in under autocast) or, outside autocast, to bf16 and the result back to fp32."""
    out_dtype = q.dtype
    if q.is_cuda and q.dtype not in (torch.bfloat16, torch.float16):
        autocast = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda") if autocast else torch.bfloat16
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        out_dtype = dtype if autocast else out_dtype
    out = FLASH_ATTN_FUNC(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True)  # (B, T, H, D)
    out = out[0] if isinstance(out, tuple) else out  # some versions also return the log-sum-exp
    return out.transpose(1, 2).to(out_dtype)  # (B, H, T, D) view
