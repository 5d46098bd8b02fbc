"""U-Net skips with learned sigmoid gates: x = lerp(w * skip, x, sigmoid(g)) at each decoder position."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="U-Net skips mixed in by a learned per-channel gate: x = lerp(w * skip, x, sigmoid(g)), g zero-init "
    "(a 0.5 mix at init)",
    evidence="PR #1089; 2026-04-01+ records (SKIP_GATES_ENABLED=1) through 2026-04-27 (PR #1855); bundled, "
    "not isolated",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.bool("SKIP_GATES_ENABLED", True, "gate each U-Net skip (0: the plain U-Net skips of unet_blocks, no gates)")


@hookimpl
def golfc_skip_mixer() -> Impl:
    return Impl(module="golfc_plugins.unet_gated_skips.runtime", symbols="GatedUNetSkips",
                requires=("golfc_plugins.unet_blocks.runtime",))
