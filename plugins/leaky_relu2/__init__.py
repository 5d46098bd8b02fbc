"""LeakyReLU(0.5)-squared MLP: y = proj(leaky_relu(fc(x), 0.5)^2), output projection zero-initialised."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="MLP with leaky_relu(x W1^T, NEGATIVE_SLOPE)^2 instead of relu^2; width MLP_MULT*d",
    evidence="PR #493, then the 2026-03-23 record (PR #549) onward: -0.002 to -0.003 bpb",
    conflicts=("fused_mlp",),
)


def declare_mlp_hparams(hp: HParams) -> None:
    """NEGATIVE_SLOPE, shared with fused_mlp (this MLP with a Triton kernel). The width is the default MLP's
    MLP_MULT (relu2_mlp declares it and, as a default plugin, is always active)."""
    hp.float("NEGATIVE_SLOPE", 0.5, "slope of the leaky relu below 0, before squaring", ge=0.0)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    declare_mlp_hparams(hp)


@hookimpl
def golfc_mlp() -> Impl:
    return Impl(module="golfc_plugins.leaky_relu2.runtime", symbols="LeakyReluSquaredMLP")
