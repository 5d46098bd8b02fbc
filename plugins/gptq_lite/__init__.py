"""gptq_lite: per row, the clip percentile with the lowest reconstruction error among a few candidates."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="try clip percentiles GPTQ_LITE_PERCENTILES per row and keep the one with the lowest squared error",
    evidence="2026-03-22_11L_EMA_GPTQ-lite (PR #414): -0.0006 bpb",
    conflicts=("sdclip",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("GPTQ_LITE_PERCENTILES", "99.9,99.95,99.99,99.999,100", "candidate clip percentiles of |w| per row")


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("gptq_lite", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.gptq_lite.runtime", symbols="GPTQ_LITE_STAGE")
