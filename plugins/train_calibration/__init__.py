"""Default calibration source: training micro-batches from a fresh train loader (never validation data)."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="calibration batches drawn from the training shards by a fresh train loader",
    evidence="baseline (records' GPTQ calibrates on training batches: 2026-03-22 GPTQ-lite onwards)",
)


@hookimpl
def golfc_calibration_source() -> Impl:
    return Impl(module="golfc_plugins.train_calibration.runtime", symbols="train_calibration_batches")
