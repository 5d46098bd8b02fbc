# ==================================================================================================
# plugins/window: causal sliding-window attention on the layers of WINDOW_ATTN_LAYERS (PR #1212); the
# other layers keep the full causal kernel (sdpa_attention). Three kernels compute the same thing:
#   flash: flash-attn's window_size (FA3 flash_attn_interface, or FA4 flash_attn.cute), when importable
#   flex:  FlexAttention with a block mask built once per (sequence length, window, device) and cached
#   sdpa:  SDPA with an explicit boolean mask (exact everywhere, no faster than full attention; the CPU path)
# ==================================================================================================
from golfc_plugins.sdpa_attention.runtime import sdpa_attention  # editors and tests only: blanked when emitted
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def window_flash_module():
    """flash-attn's flash_attn_func with window_size: FA3 (flash_attn_interface) or FA4 (flash_attn.cute); None."""
    for name in ("flash_attn_interface", "flash_attn.cute"):
        try:
            module = __import__(name, fromlist=["flash_attn_func"])
            return module.flash_attn_func
        except (ImportError, AttributeError, OSError, RuntimeError):
            continue
    return None


WINDOW_FLASH_FUNC = window_flash_module()
if Hyperparameters.window_kernel == "flash" and WINDOW_FLASH_FUNC is None:
    print("error: WINDOW_KERNEL=flash: neither flash_attn_interface (FA3) nor flash_attn.cute (FA4) can be imported; "
          "expected auto, flex or sdpa", file=sys.stderr)
    sys.exit(2)


def window_mask(T, window, device):
    """(T, T) bool: query i may attend to key j when i - window < j <= i."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & (j > i - window)


def window_mask_mod(window):
    """FlexAttention's mask_mod for the same rule: kv <= q and q - kv < window."""

    def mask_mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx - kv_idx < window)

    return mask_mod


WINDOW_MASK_MODS = {}  # window -> its mask_mod (one function object per window, so compiled graphs reuse it)
WINDOW_BLOCK_MASKS = {}  # (T, window, device) -> the BlockMask's tensors, built once


@torch.compiler.assume_constant_result
def window_block_tensors(T, window, device):
    """The block-sparse structure of the (T, T) window mask (128 x 128 blocks: which blocks are skipped, full or
    partial), built eagerly the first time a shape is seen and cached. Under torch.compile the result is a constant
    of the graph (assume_constant_result): the mask is never rebuilt per forward."""
    key = (T, window, device)
    if key not in WINDOW_BLOCK_MASKS:
        mask_mod = WINDOW_MASK_MODS.setdefault(window, window_mask_mod(window))
        bm = create_block_mask(mask_mod, None, None, T, T, device=device)
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
    block_mask = window_block_mask(q.size(2), window, q.device)
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=q.size(1) != k.size(1))


def window_flash_attention(q, k, v, window):
    """flash-attn with window_size=(window - 1, 0): key j visible to query i when i - (window - 1) <= j <= i.
    It takes (B, T, H, D): the core's q/k/v are transposed views of that memory, so no copy; GQA native."""
    out = WINDOW_FLASH_FUNC(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True,
                            window_size=(window - 1, 0))
    out = out[0] if isinstance(out, tuple) else out  # some versions also return the log-sum-exp
    return out.transpose(1, 2)  # (B, H, T, D) view of (B, T, H, D) memory, as SDPA returns it


def window_sdpa_attention(q, k, v, window):
    """SDPA with the explicit (T, T) boolean mask: exact on every device, computes the masked blocks too."""
    if q.size(1) != k.size(1):  # GQA: the masked kernels do not all take enable_gqa
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=window_mask(q.size(2), window, q.device))


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
