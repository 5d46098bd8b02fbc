"""FlashAttention kernel: causal attention through flash_attn_interface (FA3) or flash_attn.cute (FA4)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="causal attention kernel from flash-attn: FA3 (flash_attn_interface) or FA4 (flash_attn.cute); "
    "a run without either stops at start-up",
    evidence="PR #122: FA3, -9% step time (no bpb change: the same attention); imported by every record from "
    "03-20 on",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("FLASH_ATTN_IMPL", "auto", "auto (flash_attn_interface, then flash_attn.cute), fa3 or fa4",
           choices=("auto", "fa3", "fa4"))


@hookimpl
def golfc_attention_kernel() -> Impl:
    return Impl(module="golfc_plugins.flash_attn.runtime", symbols="flash_attention",
                requires=("golfc_plugins.sdpa_attention.flash",))
