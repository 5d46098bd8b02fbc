"""LN scale: the norm feeding each block's attention and MLP multiplied by 1/sqrt(layer + 1)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="rms_norm(x) * 1/sqrt(layer + 1) as the input of block `layer`'s attention and MLP (LN_SCALE)",
    evidence="2026-03-21_11L_XSA4_EMA_PartialRoPE_LateQAT_1.1248 (PR #315): -0.0023 bpb together with partial "
    "RoPE (1.1271 -> 1.1248); LN_SCALE=1 in every later record",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.bool("LN_SCALE", True, "scale the norm feeding block i's attention and MLP by 1/sqrt(i + 1) (0: plain "
            "rms_norm, for an ablation without a rebuild)")


@hookimpl
def golfc_block_norm() -> Impl:
    return Impl(module="golfc_plugins.ln_scale.runtime", symbols="ln_scaled_norm")
