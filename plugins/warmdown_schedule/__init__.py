"""Default schedule: constant LR, then a linear warmdown timed by the wall clock; Muon momentum warmup."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="lr multiplier = remaining_ms / (WARMDOWN_ITERS * step_ms) near the cap; momentum warmup",
    evidence="baseline",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("WARMDOWN_ITERS", 1200, "length of the final linear LR decay, in steps", ge=0)
    hp.float("MUON_MOMENTUM_WARMUP_START", 0.85, "Muon momentum at step 0", ge=0.0, le=1.0)
    hp.int("MUON_MOMENTUM_WARMUP_STEPS", 500, "steps to reach MUON_MOMENTUM", ge=0)


@hookimpl
def golfc_schedule() -> Impl:
    return Impl(module="golfc_plugins.warmdown_schedule.runtime", symbols="apply_warmdown_schedule")
