"""Parallel residuals: attention and MLP read the same stream (GPT-J form) or two lanes (the records' two-lane form)
from a chosen layer on."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="from PARALLEL_START_LAYER: two residual lanes (attention reads lane 0, the MLP lane 1, learned "
    "mixing), merged at the end; or from PARALLEL_RESIDUAL_START the GPT-J form x += attn(n(x)) + mlp(n(x))",
    evidence="two-lane: PR #1204 (2026-03-31, from layer 7, -0.0022), PR #1529/#1530 -> 2026-04-27 (PR #1855, "
    "PARALLEL_START_LAYER=8); GPT-J: 2026-04-06 (PR #1412, a smaller quantization gap), PR #1477, PR #1493 "
    "(PARALLEL_RESIDUAL_START=7)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("PARALLEL_START_LAYER", 8, "first layer of the two-lane form (-1: none)", ge=-1)
    hp.str("PARALLEL_FINAL_LANE", "mean", "what the stack returns after the last two-lane block: the mean of the "
           "lanes, lane 0 (attn) or lane 1 (mlp)", choices=("mean", "attn", "mlp"))
    hp.int("PARALLEL_RESIDUAL_START", -1, "first layer of the GPT-J form (-1: none; layers from "
           "PARALLEL_START_LAYER on take the two-lane form)", ge=-1)


@hookimpl
def golfc_block() -> Impl:
    return Impl(module="golfc_plugins.parallel_residuals.runtime", symbols="ParallelResidualBlock",
                requires=("golfc_plugins.unet_blocks.runtime",))
