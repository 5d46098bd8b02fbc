"""Default block, layer schedule and skip mixer: residual mixing with x0, every block once, U-Net skips."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="pre-norm blocks with resid_mix to x0, attn/mlp scales, in order, U-Net skip weights (baseline)",
    evidence="baseline (modded-nanogpt U-Net skips)",
)

RUNTIME = "golfc_plugins.unet_blocks.runtime"


@hookimpl
def golfc_block() -> Impl:
    return Impl(module=RUNTIME, symbols="UNetBlock")


@hookimpl
def golfc_block_norm() -> Impl:
    return Impl(module=RUNTIME, symbols="unet_block_norm")


@hookimpl
def golfc_layer_schedule() -> Impl:
    return Impl(module=RUNTIME, symbols="unet_layer_schedule")


@hookimpl
def golfc_skip_mixer() -> Impl:
    return Impl(module=RUNTIME, symbols="UNetSkips")
