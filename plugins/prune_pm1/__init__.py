"""prune_pm1: zero the cheapest quantized +-1 values until the artifact fits 16,000,000 bytes."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="over budget: zero the +-1 quantized values of smallest cost (row scale^2), as few as fit (binary search)",
    evidence="2026-03-25 record (from PR #609): fits the size target; its TARGET_MB was MiB, here decimal bytes",
    conflicts=("fit_budget",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("PRUNE_PM1_STEPS", 12, "binary-search steps (each compresses a candidate once)", ge=1)


@hookimpl
def golfc_budget_fitter() -> Impl:
    return Impl(module="golfc_plugins.prune_pm1.runtime", symbols="prune_pm1_fit")
