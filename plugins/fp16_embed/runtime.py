# ==================================================================================================
# plugins/fp16_embed: a quant stage that keeps the embedding class (tok_emb, lm_head) in fp16
# ==================================================================================================


class Fp16EmbedStage:
    """plan: 16 bits (kept fp16) for the low-bit engine's embed class."""

    def plan(self, name, t, bits, h):
        return 16 if lowbit_class(name) == "embed" else bits


FP16_EMBED_STAGE = Fp16EmbedStage()
