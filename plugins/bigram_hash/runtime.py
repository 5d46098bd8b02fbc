# ==================================================================================================
# plugins/bigram_hash: hashed (previous, current) token embedding, added to tok_emb(ids) before the
# embedding norm (PR #162)
# ==================================================================================================
from golfc.runtime.model import CONTROL_TENSOR_NAME_PATTERNS, CastedLinear
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

CONTROL_TENSOR_NAME_PATTERNS.extend(["bigram_scale"])  # fp32 in training and in the artifact


def bigram_bucket(ids, buckets):
    """ids (B, T) int64 -> (B, T) bucket of each (previous, current) pair; position 0 has no previous token
    and gets the last bucket: (36313 * cur XOR 27191 * prev) mod (buckets - 1)."""
    prev = F.pad(ids[:, :-1], (1, 0))
    idx = torch.bitwise_xor(36313 * ids, 27191 * prev) % (buckets - 1)
    idx[:, 0] = buckets - 1
    return idx


class BigramHashEmbedding(nn.Module):
    """e (B, T, d) -> e + bigram_scale * proj(table[bucket(prev, cur)]).

    The table starts at zero, so the model starts as it would without the plugin; the projection keeps the
    default CastedLinear init (a zero table and a zero projection would never get a gradient) and, as a
    CastedLinear, is trained by Muon and quantized like the block matrices.
    """

    def __init__(self, h):
        super().__init__()
        self.buckets = h.bigram_vocab_size
        self.table = nn.Embedding(h.bigram_vocab_size, h.bigram_dim)
        nn.init.zeros_(self.table.weight)
        self.proj = CastedLinear(h.bigram_dim, h.model_dim)
        self.bigram_scale = nn.Parameter(torch.tensor(h.bigram_scale_init, dtype=torch.float32))

    def forward(self, ids, e):
        b = self.table(bigram_bucket(ids, self.buckets))  # (B, T, bigram_dim)
        return e + self.bigram_scale.to(e.dtype) * self.proj(b).to(e.dtype)
