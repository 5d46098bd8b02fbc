"""int5: the low-bit quantizer (plugins/int6's engine) with int5 matrices and int8 embeddings by default."""

from __future__ import annotations

from golfc_plugins.int6 import declare_lowbit_hparams, lowbit_quantizer_impl

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="per-row symmetric int5 ([-15, 15], percentile clip) for attention and MLP matrices, int8 embeddings",
    evidence="2026-03-20_10L_Int5MLP: int5 MLP [-16, 15] + magnitude pruning paid for an extra layer (-0.003)",
    conflicts=("int6", "mixed_quant"),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    declare_lowbit_hparams(hp, mlp=5, attn=5, embed=8, other=5)


@hookimpl
def golfc_quantizer() -> Impl:
    return lowbit_quantizer_impl("golfc_plugins.int5.runtime", "INT5_LABEL")
