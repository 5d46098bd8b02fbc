"""Fused softcapped cross-entropy: a Triton kernel per direction for the training loss on CUDA (the loss slot)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="softcap + cross-entropy in one Triton kernel (forward) and one (backward) on CUDA training steps; "
    "the core's eager loss elsewhere",
    evidence="PR #1787 (2026-04-23 record, 1.0634; FusedCE bundled with PolarNS, MIN_LR, SparseAttnGate): "
    "a speed trick, no claimed bpb change of its own",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.bool("FUSED_CE_ENABLED", True, "use the Triton loss kernels on CUDA training steps (0: the eager loss)")


@hookimpl
def golfc_loss() -> Impl:
    return Impl(module="golfc_plugins.fused_ce.runtime", symbols="fused_softcap_loss")
