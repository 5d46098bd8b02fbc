"""mixed_quant: bits per tensor class (int5 MLP, int6 attention, int8 embeddings by default)."""

from __future__ import annotations

from golfc_plugins.int6 import declare_lowbit_hparams, lowbit_quantizer_impl

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="bits per tensor class: QUANT_MLP_BITS=5, QUANT_ATTN_BITS=6, QUANT_EMBED_BITS=8 by default",
    evidence="2026-03-20_10L_Int5MLP (int5 MLP, int6 attention); 03-31 Hessian-ranked int5/int6; "
    "int7 embeddings 04-14+",
    conflicts=("int6", "int5"),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    declare_lowbit_hparams(hp, mlp=5, attn=6, embed=8, other=6)


@hookimpl
def golfc_quantizer() -> Impl:
    return lowbit_quantizer_impl("golfc_plugins.mixed_quant.runtime", "MIXED_LABEL")
