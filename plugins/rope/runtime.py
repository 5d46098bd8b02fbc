# ==================================================================================================
# plugins/rope: the baseline's rotary position encoding (half-split rotation of each head's q and k),
# with cos/sin tables cached for TRAIN_SEQ_LEN positions and grown once for longer evaluations
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class Rotary(nn.Module):
    """RoPE with the half-split rotation; cos/sin tables cached for max_len positions.

    bf16_tables=True reproduces the tables the reference baseline trains with on a GPU. It casts the whole
    model to bf16 (buffers included), so its frequencies are bf16, and builds the tables inside its compiled
    graph, where inductor forms the positions and the products position * frequency and their cos/sin in fp32
    and rounds only the stored tables to bf16. (Eagerly, the positions and products would round to bf16 too:
    positions above 256 to even numbers, angles off by up to 2 rad at position 1000. golfc built them that way
    until 2026-12-04 and trained 0.04 bpb worse at 300 steps; bench/RESULTS.md.) ROPE_BF16_TABLES=0: fp32
    frequencies and tables.
    """

    def __init__(self, head_dim, base, max_len, bf16_tables=False):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.table_dtype = torch.bfloat16 if bf16_tables else torch.float32
        self._build(max_len, None)

    def _build(self, seq_len, device):
        # frequencies base^(-2i/head_dim), i = 0 .. head_dim/2 - 1, rounded to the table dtype
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device) / self.head_dim))
        positions = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = torch.outer(positions, inv_freq.to(self.table_dtype).float())  # (T, D/2), products in fp32
        cos, sin = freqs.cos().to(self.table_dtype), freqs.sin().to(self.table_dtype)
        self.register_buffer("cos", cos[None, :, None], persistent=False)  # (1, T, 1, D/2)
        self.register_buffer("sin", sin[None, :, None], persistent=False)

    def forward(self, x):  # x (B, T, H, D)
        T = x.size(1)
        if T > self.cos.size(1):  # longer than any sequence seen so far: grow the tables once
            self._build(T, self.cos.device)
        cos, sin = self.cos[:, :T].to(x.dtype), self.sin[:, :T].to(x.dtype)
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)

    def grow_positions(self, seq_len):
        """Tables for seq_len positions, built outside a compiled graph (core ensure_positions)."""
        if self.cos.size(1) < seq_len:
            self._build(seq_len, self.cos.device)


def rope_position_encoding(head_dim, h, layer):
    """The position_encoding slot's default: the baseline's RoPE, base ROPE_BASE, tables for TRAIN_SEQ_LEN."""
    return Rotary(head_dim, h.rope_base, h.train_seq_len, h.rope_bf16_tables)
