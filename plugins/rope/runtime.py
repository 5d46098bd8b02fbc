# ==================================================================================================
# plugins/rope: the baseline's rotary position encoding (half-split rotation of each head's q and k),
# with cos/sin tables cached for TRAIN_SEQ_LEN positions and grown once for longer evaluations.
# Partial RoPE (plugins/partial_rope, ROPE_DIMS): only the first ROPE_DIMS dims of a head are rotated; every
# rope form (rope, ntk_rope, yarn_rope) derives from Rotary and honours it.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def rope_dims_of(h, head_dim):
    """The dims of each head that RoPE rotates: ROPE_DIMS when plugins/partial_rope is built in (0: all of them),
    else the whole head."""
    dims = getattr(h, "rope_dims", 0)
    return dims if dims > 0 else head_dim


def rope_rotate_half(x, cos, sin):
    """Half-split rotation of x (..., R): pairs (x[i], x[i + R/2]) turned by the angles of cos/sin (..., R/2)."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


class Rotary(nn.Module):
    """RoPE with the half-split rotation on the first rope_dims dims of a head (all by default); cos/sin tables
    cached for max_len positions.

    bf16_tables=True reproduces the tables the reference baseline trains with on a GPU. It casts the whole
    model to bf16 (buffers included), so its frequencies are bf16, and builds the tables inside its compiled
    graph, where inductor forms the positions and the products position * frequency and their cos/sin in fp32
    and rounds only the stored tables to bf16. (Eagerly, the positions and products would round to bf16 too:
    positions above 256 to even numbers, angles off by up to 2 rad at position 1000. golfc built them that way
    until 2026-12-04 and trained 0.04 bpb worse at 300 steps; bench/RESULTS.md.) ROPE_BF16_TABLES=0: fp32
    frequencies and tables.
    """

    def __init__(self, head_dim, base, max_len, bf16_tables=False, rope_dims=None):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.rope_dims = head_dim if rope_dims is None else rope_dims
        if self.rope_dims % 2 or not 2 <= self.rope_dims <= head_dim:
            raise RunInputError(f"ROPE_DIMS={self.rope_dims}: expected an even number from 2 to the head dimension "
                                f"{head_dim} (MODEL_DIM / NUM_HEADS), or 0 for all")
        self.table_dtype = torch.bfloat16 if bf16_tables else torch.float32
        self._build(max_len, None)

    def frequencies(self, base, device):
        """(rope_dims/2,) fp32: base^(-2i/rope_dims), i = 0 .. rope_dims/2 - 1 (the subclasses rescale them)."""
        return 1.0 / (base ** (torch.arange(0, self.rope_dims, 2, dtype=torch.float32, device=device) / self.rope_dims))

    def tables(self, inv_freq, seq_len, device):
        """cos and sin (1, seq_len, 1, rope_dims/2) in the table dtype; frequencies rounded to it first."""
        positions = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = torch.outer(positions, inv_freq.to(self.table_dtype).float())  # (T, R/2), products in fp32
        return freqs.cos().to(self.table_dtype)[None, :, None], freqs.sin().to(self.table_dtype)[None, :, None]

    def _build(self, seq_len, device):
        cos, sin = self.tables(self.frequencies(self.base, device), seq_len, device)
        self.register_buffer("cos", cos, persistent=False)  # (1, T, 1, R/2)
        self.register_buffer("sin", sin, persistent=False)

    def rotate(self, x, cos, sin):
        """x (B, T, H, D) with tables for its T positions: the first rope_dims dims rotated, the rest as they are."""
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        if self.rope_dims == x.size(-1):
            return rope_rotate_half(x, cos, sin)
        rd = self.rope_dims  # partial RoPE: the other D - rd dims carry no position signal
        return torch.cat((rope_rotate_half(x[..., :rd], cos, sin), x[..., rd:]), dim=-1)

    def forward(self, x):  # x (B, T, H, D)
        T = x.size(1)
        if T > self.cos.size(1):  # longer than any sequence seen so far: grow the tables once
            self._build(T, self.cos.device)
        return self.rotate(x, self.cos[:, :T], self.sin[:, :T])

    def grow_positions(self, seq_len):
        """Tables for seq_len positions, built outside a compiled graph (core ensure_positions)."""
        if self.cos.size(1) < seq_len:
            self._build(seq_len, self.cos.device)


def rope_position_encoding(head_dim, h, layer):
    """The position_encoding slot's default: the baseline's RoPE, base ROPE_BASE, tables for TRAIN_SEQ_LEN."""
    return Rotary(head_dim, h.rope_base, h.train_seq_len, h.rope_bf16_tables, rope_dims_of(h, head_dim))
