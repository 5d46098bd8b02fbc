# ==================================================================================================
# plugins/ln_scale: LN scale (2026-03-21_11L_XSA4_EMA_PartialRoPE, PR #315; every later record): the RMSNorm
# output that feeds the attention and the MLP of block i is multiplied by 1/sqrt(i + 1), i the block's index
# (the same factor each time a block runs under depth recurrence, as the records do it).
# ==================================================================================================
from golfc.runtime.model import rms_norm  # editors and tests only: blanked when emitted
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def ln_scale_factor(layer):
    """1 / sqrt(layer + 1): 1 for the first block, 1/sqrt(2), 1/sqrt(3), ... (a Python float: a constant of
    the compiled graph)."""
    return 1.0 / math.sqrt(layer + 1)


def ln_scaled_norm(x, layer, h, fctx):
    """block_norm slot: x (B, T, d) -> rms_norm(x) * 1/sqrt(layer + 1); LN_SCALE=0: rms_norm(x) alone."""
    if not h.ln_scale:
        return rms_norm(x)
    return rms_norm(x) * ln_scale_factor(layer)
