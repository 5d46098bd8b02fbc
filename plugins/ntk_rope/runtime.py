# ==================================================================================================
# plugins/ntk_rope: RoPE whose frequencies are rebuilt with the NTK-aware base for sequences longer than
# TRAIN_SEQ_LEN (2026-03-19_WarmdownQuantization, eval at 1408; the 03-20 XSA records, train 1024 -> eval 2048):
# base' = base * s^(D / (D - 2)), s = T / TRAIN_SEQ_LEN. Sequences up to TRAIN_SEQ_LEN use rope's tables as they are.
# ==================================================================================================
from golfc_plugins.rope.runtime import Rotary  # editors and tests only: blanked when emitted

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def ntk_base(base, head_dim, seq_len, train_len):
    """The NTK-aware base for seq_len positions: base * (seq_len / train_len)^(head_dim / (head_dim - 2))."""
    return base * (seq_len / train_len) ** (head_dim / (head_dim - 2))


class NtkRotary(Rotary):
    """rope's Rotary (tables for TRAIN_SEQ_LEN, unchanged) plus one table pair per longer length T, built with
    ntk_base(T) (buffers ntk_cos_T / ntk_sin_T, grown by grow_positions outside compiled graphs)."""

    def __init__(self, head_dim, base, train_len, bf16_tables=False):
        super().__init__(head_dim, base, train_len, bf16_tables)
        self.train_len = train_len

    def grow_positions(self, seq_len):
        if seq_len <= self.train_len or hasattr(self, f"ntk_cos_{seq_len}"):
            return
        device = self.cos.device
        base = ntk_base(self.base, self.head_dim, seq_len, self.train_len)
        inv_freq = 1.0 / (base ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device) / self.head_dim))
        positions = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = torch.outer(positions, inv_freq.to(self.table_dtype).float())  # (T, D/2), as rope builds its tables
        self.register_buffer(f"ntk_cos_{seq_len}", freqs.cos().to(self.table_dtype)[None, :, None], persistent=False)
        self.register_buffer(f"ntk_sin_{seq_len}", freqs.sin().to(self.table_dtype)[None, :, None], persistent=False)

    def forward(self, x):  # x (B, T, H, D)
        T = x.size(1)
        if T <= self.train_len:
            return super().forward(x)
        self.grow_positions(T)  # eager callers; a compiled evaluation has them from ensure_positions
        cos, sin = getattr(self, f"ntk_cos_{T}").to(x.dtype), getattr(self, f"ntk_sin_{T}").to(x.dtype)
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


def ntk_position_encoding(head_dim, h, layer):
    """position_encoding slot: RoPE with the NTK-aware base beyond TRAIN_SEQ_LEN."""
    return NtkRotary(head_dim, h.rope_base, h.train_seq_len, h.rope_bf16_tables)
