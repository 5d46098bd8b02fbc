# ==================================================================================================
# plugins/sdpa_attention/flash: the one flash-attn import, which window (WINDOW_KERNEL=flash) and flash_attn share:
# flash_attn_func from FlashAttention-3 (flash_attn_interface, Hopper) or FlashAttention-4 (flash_attn.cute), the
# one-line error where the user asked for it and none imports, and the call on the core's layout. Inlined only into
# programs whose kernel requires it (Impl.requires), never into the baseline.
# ==================================================================================================
import importlib
import sys

# flash_attn_func takes (B, T, H, D) (and window_size); its kernels take bf16/fp16 on CUDA only.
FLASH_ATTN_MODULES = {"fa3": "flash_attn_interface", "fa4": "flash_attn.cute"}  # FLASH_ATTN_IMPL -> module


def flash_attn_candidates(choice="auto"):
    """The modules a choice allows, in the order they are tried (auto: FA3, then FA4)."""
    return list(FLASH_ATTN_MODULES.values()) if choice == "auto" else [FLASH_ATTN_MODULES[choice]]


def flash_attn_import(choice="auto"):
    """(module name, its flash_attn_func) for the first candidate that imports and has one; (None, None) if none."""
    for name in flash_attn_candidates(choice):
        try:
            func = getattr(importlib.import_module(name), "flash_attn_func", None)
        except (ImportError, OSError, RuntimeError):  # absent, or built for another CUDA / torch
            continue
        if func is not None:
            return name, func
    return None, None


def flash_attn_required(choice, asked_by, otherwise):
    """(module name, flash_attn_func) as flash_attn_import gives them, where the user asked for flash-attn
    (`asked_by`: the plugin and its knob); when none imports: one line on stderr naming what was tried and what to
    do instead, exit code 2, at start-up before any data or model."""
    name, func = flash_attn_import(choice)
    if func is None:
        tried = " or ".join(flash_attn_candidates(choice))
        print(f"error: {asked_by}: cannot import {tried}; expected FlashAttention-3 or -4 installed, or {otherwise}",
              file=sys.stderr)
        sys.exit(2)
    return name, func


def flash_attn_call(func, q, k, v, **kwargs):
    """flash-attn on the core's layout: q (B, H, T, D), k and v (B, Hkv, T, D) are transposed views of (B, T, H, D)
    memory, so handing it .transpose(1, 2) copies nothing; its (B, T, H, D) output read back as (B, H, T, D) is in
    q's memory order, as SDPA returns it. GQA native. Some versions also return the log-sum-exp: dropped."""
    out = func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **kwargs)
    out = out[0] if isinstance(out, tuple) else out
    return out.transpose(1, 2)
