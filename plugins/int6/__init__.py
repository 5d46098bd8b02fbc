"""int6: the low-bit export quantizer, int6 per row with int8 embeddings by default.

Its run-time module is the low-bit engine that ``int5`` and ``mixed_quant`` reuse with other defaults, and
that every ``quant_stages`` plugin (fp16_keep, gptq_lite, sdclip, gptq, lqer) acts on.
"""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl
from golfc.errors import RecipeError

GOLFC_PLUGIN = PluginInfo(
    summary="per-row symmetric int6 ([-31, 31], percentile clip) for attention and MLP matrices, int8 embeddings",
    evidence="2026-03-19/03-20 int6 records: int6 blocks + int8 embedding, quant gap +0.0015 (vs +0.048 all int6)",
)

ENGINE = "golfc_plugins.int6.runtime"
LOWBIT_QUANTIZERS = ("int6", "int5", "mixed_quant")


def declare_lowbit_hparams(hp: HParams, mlp: int, attn: int, embed: int, other: int) -> None:
    """The engine's knobs, with a preset's defaults (int6, int5 and mixed_quant each declare them)."""
    hp.int("QUANT_MLP_BITS", mlp, "bits of MLP matrices (.mlp.)", ge=2, le=8)
    hp.int("QUANT_ATTN_BITS", attn, "bits of attention matrices (.attn.)", ge=2, le=8)
    hp.int("QUANT_EMBED_BITS", embed, "bits of the embedding / head (tok_emb, lm_head)", ge=2, le=8)
    hp.int("QUANT_OTHER_BITS", other, "bits of every other large float tensor", ge=2, le=8)
    hp.int("QUANT_KEEP_FLOAT_NUMEL", 65_536, "tensors with at most this many elements stay float", ge=0)
    hp.float("QUANT_CLIP_PERCENTILE", 99.99984, "per-row clip: this percentile of |w| (no stage choosing it)",
             gt=0.0, le=100.0)


def lowbit_quantizer_impl(label_module: str, label: str) -> Impl:
    """The quantizer slot bound to the engine, with the preset's label (its module requires the engine)."""
    requires = () if label_module == ENGINE else (ENGINE,)
    return Impl(module=label_module, requires=requires,
                symbols={"quantize_model": "quantize_model_lowbit",
                         "dequantize_state_dict": "dequantize_state_dict_lowbit", "QUANT_LABEL": label})


def require_lowbit(plugin: str, active: tuple[str, ...]) -> None:
    """A quant stage acts only on the low-bit engine: refuse it beside int8_quant."""
    if not any(q in active for q in LOWBIT_QUANTIZERS):
        raise RecipeError(f"{plugin} acts on the low-bit quantizer: add one of {', '.join(LOWBIT_QUANTIZERS)}")


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    declare_lowbit_hparams(hp, mlp=6, attn=6, embed=8, other=6)


@hookimpl
def golfc_quantizer() -> Impl:
    return lowbit_quantizer_impl(ENGINE, "INT6_LABEL")
