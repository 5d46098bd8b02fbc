# ==================================================================================================
# plugins/yarn_rope: RoPE with YaRN frequency interpolation, as the 2026-03-24 ternary record does it
# (ROPE_TYPE=yarn): every frequency i of the R rotated dims (ROPE_DIMS with partial_rope, else head_dim) is divided
# by ramp_i * (1/scale - 1) + 1, ramp_i = clamp((2i/R - 0.25) / 0.75, 0, 1), scale = TRAIN_SEQ_LEN / YARN_MAX_LEN.
# The fastest quarter of the frequencies keeps its value, the slowest is stretched by YARN_MAX_LEN / TRAIN_SEQ_LEN.
# The frequencies are fixed: training and every evaluation use the same tables (unlike ntk_rope).
# ==================================================================================================
from golfc_plugins.rope.runtime import Rotary, rope_dims_of  # editors and tests only: blanked when emitted

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def yarn_divisors(rope_dims, scale, device=None):
    """(rope_dims/2,) fp32: what YaRN divides rope's frequencies by, ramp * (1/scale - 1) + 1."""
    ramp = ((torch.arange(0, rope_dims, 2, dtype=torch.float32, device=device) / rope_dims - 0.25) / 0.75).clamp(0.0, 1.0)
    return ramp * (1.0 / scale - 1.0) + 1.0


class YarnRotary(Rotary):
    """rope's Rotary whose frequencies are YaRN-interpolated for contexts up to max_len (scale = train_len / max_len);
    tables grow with rope's grow_positions, the frequencies stay the same at every length."""

    def __init__(self, head_dim, base, train_len, max_len, bf16_tables=False, rope_dims=None):
        self.yarn_scale = train_len / max_len  # set before Rotary builds its first tables with frequencies()
        super().__init__(head_dim, base, train_len, bf16_tables, rope_dims)

    def frequencies(self, base, device):
        inv_freq = super().frequencies(base, device)  # base^(-2i/R)
        return inv_freq / yarn_divisors(self.rope_dims, self.yarn_scale, device)


def yarn_position_encoding(head_dim, h, layer):
    """position_encoding slot: RoPE with YaRN-interpolated frequencies for contexts up to YARN_MAX_LEN."""
    return YarnRotary(head_dim, h.rope_base, h.train_seq_len, h.yarn_max_len, h.rope_bf16_tables,
                      rope_dims_of(h, head_dim))
