"""SWA: a uniform average of snapshots taken every SWA_EVERY steps once the LR multiplier is below SWA_START_FRAC."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="uniform average of the weights every SWA_EVERY steps while lr_mul < SWA_START_FRAC, exported",
    evidence="2026-03-20_Int6_MLP3x...SWA (every 50 steps once lr_mul < 0.5); 03-20 10L_Int5MLP start 0.4: -0.0006",
    conflicts=("ema",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SWA_EVERY", 50, "take a snapshot every N optimizer steps (during the warmdown)", ge=1)
    hp.float("SWA_START_FRAC", 0.5, "snapshots only while the LR multiplier is below this", gt=0.0)


@hookimpl
def golfc_weight_averaging() -> Impl:
    return Impl(module="golfc_plugins.swa.runtime", symbols="SwaAverager")
