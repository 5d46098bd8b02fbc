"""Default block wiring: residual mixing with x0 and U-Net skips between encoder and decoder halves."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="pre-norm blocks with resid_mix to x0, attn/mlp scales, U-Net skip weights (baseline)",
    evidence="baseline (modded-nanogpt U-Net skips)",
)


@hookimpl
def golfc_block_wiring() -> Impl:
    return Impl(module="golfc_plugins.unet_blocks.runtime", symbols="UNetBlockStack")
