# ==================================================================================================
# plugins/value_embed: value embeddings (PR #374, 2026-03-22 record): a token table shared by every layer,
# projected to the value width and added to v on VE_LAYERS:  v_l += ve_layer_scales[l] * ve_scale * proj(table[ids])
# ==================================================================================================
from golfc.runtime.model import CONTROL_TENSOR_NAME_PATTERNS, CastedLinear
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

CONTROL_TENSOR_NAME_PATTERNS.extend(["ve_scale", "ve_layer_scales"])  # fp32 in training and in the artifact


def value_embed_layers(h):
    """VE_LAYERS as block indices (a negative entry counts from the end); one line (exit 2) for an index that is
    not a layer or that appears twice."""
    L, text = h.num_layers, ",".join(map(str, h.ve_layers))
    bad = [i for i in h.ve_layers if not -L <= i < L]
    if bad:
        raise RunInputError(f"VE_LAYERS={text}: {bad} not a layer of NUM_LAYERS={L}; expected 0..{L - 1} or -{L}..-1")
    layers = tuple(i % L for i in h.ve_layers)
    if len(set(layers)) != len(layers):
        raise RunInputError(f"VE_LAYERS={text}: a layer named twice (NUM_LAYERS={L}); expected each layer once")
    return layers


class ValueEmbedding(nn.Module):
    """The value_hook module (one per model, GPT.value_hooks.N): v (B, T, Hkv, D) -> v + s_l * ve(ids) on a layer l of
    VE_LAYERS, v unchanged elsewhere.

    ve(ids) = ve_scale * proj(table[ids]): table (vocab, VE_DIM) std 0.01, proj a zero-initialised CastedLinear to
    the value width Hkv * D (trained by Muon; none when VE_DIM already is that width), ve_scale 0.1, and one scale
    per listed layer s_l (init 1). With the projection at zero the module is the identity at init. ve(ids) is
    computed once per forward (fctx.cache) and shared by the layers; a layer that a depth-recurrent schedule runs
    twice adds it each time, as the records do. XSA and the output gates see the values with it.
    """

    def __init__(self, h):
        super().__init__()
        self.layers = value_embed_layers(h)
        self.kv_dim = h.num_kv_heads * (h.model_dim // h.num_heads)
        self.table = nn.Embedding(h.vocab_size, h.ve_dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.proj = CastedLinear(h.ve_dim, self.kv_dim, zero_init=True) if h.ve_dim != self.kv_dim else None
        self.ve_scale = nn.Parameter(torch.tensor(0.1, dtype=torch.float32))
        self.ve_layer_scales = nn.Parameter(torch.ones(len(self.layers), dtype=torch.float32))  # (n_layers,)

    def embedding(self, ids):
        """ids (B, T) -> (B, T, Hkv * D): ve_scale * proj(table[ids])."""
        e = self.table(ids)  # (B, T, VE_DIM)
        if self.proj is not None:
            e = self.proj(e)
        return e * self.ve_scale.to(e.dtype)

    def forward(self, v, layer, fctx):  # v (B, T, Hkv, D)
        if layer not in self.layers:
            return v
        if "value_embed" not in fctx.cache:
            fctx.cache["value_embed"] = self.embedding(fctx.ids)  # once per forward, shared by the layers
        ve = fctx.cache["value_embed"].view(v.shape)  # (B, T, Hkv, D)
        return v + (ve * self.ve_layer_scales[self.layers.index(layer)].to(ve.dtype)).to(v.dtype)
