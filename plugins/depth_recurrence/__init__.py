"""Depth recurrence: a span of layers re-run NUM_LOOPS more times, switched on at a fraction of the run."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="from ENABLE_LOOPING_AT of the run, the layer schedule runs LOOP_START..LOOP_END NUM_LOOPS more times "
    "(e.g. 11 layers as 17 virtual ones); both graphs compiled in the warmup",
    evidence="PR #1204 (2026-03-31, layers 4,5), PR #1394 (2026-04-05, Loop45x2, at 0.5), PR #1493 (2026-04-09, "
    "layers 3-5 at 0.35) through 2026-04-27 (PR #1855): -0.002 to -0.003 per README, ~25% fewer tokens/s once on",
)

RUNTIME = "golfc_plugins.depth_recurrence.runtime"


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("NUM_LOOPS", 2, "extra passes over LOOP_START..LOOP_END once looping is on (0: never loop)", ge=0)
    hp.int("LOOP_START", 3, "first layer of the looped span", ge=0)
    hp.int("LOOP_END", 5, "last layer of the looped span (inclusive)", ge=0)
    hp.require_at_least("LOOP_END", "LOOP_START", note="the looped span is LOOP_START..LOOP_END")
    hp.float("ENABLE_LOOPING_AT", 0.35, "fraction of the run (wall clock under a cap, else steps) at which looping "
             "switches on", ge=0.0, le=1.0)
    hp.int_list("LOOP_SCHEDULE", (), "the looping schedule as a list of layer indices, e.g. 0,1,2,3,4,5,4,5,6,7,8 "
                "(empty: from NUM_LOOPS, LOOP_START and LOOP_END)", ge=0)


@hookimpl
def golfc_layer_schedule() -> Impl:
    return Impl(module=RUNTIME, symbols="recurrent_layer_schedule")


@hookimpl
def golfc_run_events() -> Impl:
    return Impl(module=RUNTIME, symbols="DepthRecurrenceEvents")
