"""Warmdown as a fraction of the run (of the wall-clock cap, or of ITERATIONS), floored at MIN_LR."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="lr_mul = max((1 - frac) / WARMDOWN_FRAC, MIN_LR) over the last WARMDOWN_FRAC of the run; momentum warmup",
    evidence="WARMDOWN_FRAC 0.667 (04-01) -> 0.72 (04-09) -> 0.75 (04-14) -> 0.85 (04-27); MIN_LR=0.10 (04-23+); "
    "bundled in those records, no separate delta",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("WARMDOWN_FRAC", 0.72, "fraction of the run (wall clock under a cap, else steps) spent in warmdown",
             ge=0.0, le=1.0)
    hp.float("MIN_LR", 0.0, "floor of the LR multiplier during the warmdown", ge=0.0, le=1.0)


@hookimpl
def golfc_schedule() -> Impl:
    return Impl(module="golfc_plugins.warmdown_frac.runtime", symbols="apply_fraction_schedule")
