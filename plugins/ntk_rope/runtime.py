# ==================================================================================================
# plugins/ntk_rope: RoPE whose frequencies are rebuilt with the NTK-aware base for sequences longer than
# TRAIN_SEQ_LEN (2026-03-19_WarmdownQuantization, eval at 1408; the 03-20 XSA records, train 1024 -> eval 2048):
# base' = base * s^(R / (R - 2)), s = T / TRAIN_SEQ_LEN, R the rotated dims (ROPE_DIMS with partial_rope, else
# head_dim). Sequences up to TRAIN_SEQ_LEN use rope's tables as they are.
# ==================================================================================================
from golfc_plugins.rope.runtime import Rotary, rope_dims_of  # editors and tests only: blanked when emitted

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def ntk_base(base, head_dim, seq_len, train_len):
    """The NTK-aware base for seq_len positions: base * (seq_len / train_len)^(head_dim / (head_dim - 2)), head_dim
    being the rotated dims."""
    return base * (seq_len / train_len) ** (head_dim / (head_dim - 2))


class NtkRotary(Rotary):
    """rope's Rotary (tables for TRAIN_SEQ_LEN, unchanged) plus one table pair per longer length T, built with
    ntk_base(T) (buffers ntk_cos_T / ntk_sin_T, grown by grow_positions outside compiled graphs)."""

    def __init__(self, head_dim, base, train_len, bf16_tables=False, rope_dims=None):
        super().__init__(head_dim, base, train_len, bf16_tables, rope_dims)
        self.train_len = train_len

    def grow_positions(self, seq_len):
        if seq_len <= self.train_len or hasattr(self, f"ntk_cos_{seq_len}"):
            return
        device = self.cos.device
        base = ntk_base(self.base, self.rope_dims, seq_len, self.train_len)
        cos, sin = self.tables(self.frequencies(base, device), seq_len, device)  # as rope builds its tables
        self.register_buffer(f"ntk_cos_{seq_len}", cos, persistent=False)
        self.register_buffer(f"ntk_sin_{seq_len}", sin, persistent=False)

    def forward(self, x):  # x (B, T, H, D)
        T = x.size(1)
        if T <= self.train_len:
            return super().forward(x)
        self.grow_positions(T)  # eager callers; a compiled evaluation has them from ensure_positions
        return self.rotate(x, getattr(self, f"ntk_cos_{T}"), getattr(self, f"ntk_sin_{T}"))


def ntk_position_encoding(head_dim, h, layer):
    """position_encoding slot: RoPE with the NTK-aware base beyond TRAIN_SEQ_LEN."""
    return NtkRotary(head_dim, h.rope_base, h.train_seq_len, h.rope_bf16_tables, rope_dims_of(h, head_dim))
