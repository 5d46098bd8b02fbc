# ==================================================================================================
# plugins/window: causal sliding-window attention on the layers of WINDOW_ATTN_LAYERS (PR #1212); the
# other layers keep the full causal kernel (sdpa_attention). Three kernels compute the same thing, all through the
# shared pieces of plugins/sdpa_attention (masks, flash), the rule written once (window_mask_mod):
#   flash: flash-attn's window_size (FA3 flash_attn_interface, or FA4 flash_attn.cute), when importable
#   flex:  FlexAttention with a block mask built once per (sequence length, window, device) and cached
#   sdpa:  SDPA with an explicit boolean mask (exact everywhere, no faster than full attention; the CPU path)
# ==================================================================================================
from golfc_plugins.sdpa_attention.flash import (  # editors and tests only: blanked when emitted
    flash_attn_call,
    flash_attn_import,
    flash_attn_required,
)
from golfc_plugins.sdpa_attention.masks import (  # editors and tests only: blanked when emitted
    masked_flex_attention,
    masked_sdpa_attention,
    rule_block_mask,
    rule_dense_mask,
)
from golfc_plugins.sdpa_attention.runtime import sdpa_attention  # editors and tests only: blanked when emitted
from torch.nn.attention.flex_attention import BlockMask

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

if Hyperparameters.window_kernel == "flash":  # asked for: without flash-attn, one line and exit 2 at start-up
    WINDOW_FLASH_FUNC = flash_attn_required("auto", "plugin window (WINDOW_KERNEL=flash)",
                                            "WINDOW_KERNEL=auto, flex or sdpa")[1]
else:
    WINDOW_FLASH_FUNC = flash_attn_import("auto")[1]  # None: auto picks FlexAttention or the masked SDPA


def window_mask_mod(window):
    """The window rule as FlexAttention's mask_mod: key kv visible to query q when kv <= q and q - kv < window."""

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx - kv_idx < window)

    return mask_mod


def window_mask(T, window, device):
    """(T, T) bool: query i may attend to key j when i - window < j <= i."""
    return rule_dense_mask(window_mask_mod(window), T, device)


WINDOW_MASK_MODS = {}  # window -> its mask_mod (one function object per window, so compiled graphs reuse it)
WINDOW_BLOCK_MASKS = {}  # (T, window, device) -> the BlockMask's tensors, built once


@torch.compiler.assume_constant_result
def window_block_tensors(T, window, device):
    """The block-sparse structure of the (T, T) window mask (128 x 128 blocks: which blocks are skipped, full or
    partial), built eagerly the first time a shape is seen and cached. Under torch.compile the result is a constant
    of the graph (assume_constant_result): the mask is never rebuilt per forward."""
    key = (T, window, device)
    if key not in WINDOW_BLOCK_MASKS:
        bm = rule_block_mask(WINDOW_MASK_MODS.setdefault(window, window_mask_mod(window)), T, device)
        WINDOW_BLOCK_MASKS[key] = (bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks, bm.full_kv_indices,
                                   bm.q_num_blocks, bm.q_indices, bm.full_q_num_blocks, bm.full_q_indices)
    return WINDOW_BLOCK_MASKS[key]


def window_block_mask(T, window, device):
    """The cached BlockMask of the window rule for sequences of T tokens (wrapping cached tensors: no compute)."""
    tensors = window_block_tensors(T, window, str(device))
    mask_mod = WINDOW_MASK_MODS.setdefault(window, window_mask_mod(window))
    return BlockMask((T, T), *tensors, BLOCK_SIZE=(128, 128), mask_mod=mask_mod)


def window_flex_attention(q, k, v, window):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D) through FlexAttention; GQA without expanding k/v."""
    return masked_flex_attention(q, k, v, window_block_mask(q.size(2), window, q.device))


def window_flash_attention(q, k, v, window):
    """flash-attn with window_size=(window - 1, 0): key j visible to query i when i - (window - 1) <= j <= i."""
    return flash_attn_call(WINDOW_FLASH_FUNC, q, k, v, causal=True, window_size=(window - 1, 0))


def window_sdpa_attention(q, k, v, window):
    """SDPA with the explicit (T, T) boolean mask: exact on every device, computes the masked blocks too."""
    return masked_sdpa_attention(q, k, v, window_mask(q.size(2), window, q.device))


def window_kernel_name(q, h):
    """WINDOW_KERNEL=auto: flash-attn on CUDA in bf16/fp16 when importable; else FlexAttention on CUDA inside a
    compiled graph (eager FlexAttention is a slow reference); else the masked SDPA (CPU: FlexAttention has no
    backward there)."""
    if h.window_kernel != "auto":
        return h.window_kernel
    if q.is_cuda and WINDOW_FLASH_FUNC is not None and q.dtype in (torch.bfloat16, torch.float16):
        return "flash"
    if q.is_cuda and torch.compiler.is_compiling():
        return "flex"
    return "sdpa"


WINDOW_KERNELS = {"flash": window_flash_attention, "flex": window_flex_attention, "sdpa": window_sdpa_attention}


def window_or_full_attention(q, k, v, h, layer, fctx=None):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D); windowed on WINDOW_ATTN_LAYERS, full elsewhere."""
    if layer not in h.window_attn_layers or h.window_size >= q.size(2):
        return sdpa_attention(q, k, v, h, layer)
    return WINDOW_KERNELS[window_kernel_name(q, h)](q, k, v, h.window_size)
