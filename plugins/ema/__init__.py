"""EMA: an fp32 exponential moving average of every weight, updated after each step; exported instead of the weights."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="ema = EMA_DECAY * ema + (1 - EMA_DECAY) * w after every step; the average is what gets exported",
    evidence="03-20 XSA4 (PR #287) onward, 0.997, 0.9965 from 04-09: EMA replacing SWA -0.0047 bundled with XSA; "
    "-0.0006 alone (03-22)",
    conflicts=("swa",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("EMA_DECAY", 0.997, "weight of the old average at each step (1: keep the initial weights)",
             ge=0.0, le=1.0)


@hookimpl
def golfc_weight_averaging() -> Impl:
    return Impl(module="golfc_plugins.ema.runtime", symbols="EmaAverager")
