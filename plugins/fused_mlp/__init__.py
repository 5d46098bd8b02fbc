"""The LeakyReLU^2 MLP with Triton kernels that fuse the activation (and its derivative) into the matmuls (GPU)."""

from __future__ import annotations

from golfc_plugins.leaky_relu2 import declare_mlp_hparams

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="leaky_relu2's MLP; CUDA training forwards/backwards through Triton matmuls with the activation fused "
    "into their epilogues",
    evidence="PR #1072 -> 2026-04-10_VarLenAttn (PR #1530) -> 04-27: with grouped all-reduces ~3% faster, ~0.001 nats; "
    "golfc's kernel measured 10% slower than leaky_relu2 under inductor at MLP 2x, d 512 (one H100, 2026-12-07)",
    conflicts=("leaky_relu2",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    declare_mlp_hparams(hp)  # NEGATIVE_SLOPE, as leaky_relu2 (which cannot be active with this plugin)
    hp.bool("FUSED_MLP_ENABLED", True, "use the Triton kernels where they apply (0: the eager leaky_relu2 MLP)")


@hookimpl
def golfc_mlp() -> Impl:
    return Impl(module="golfc_plugins.fused_mlp.runtime", symbols="FusedLeakyReluSquaredMLP",
                requires=("golfc_plugins.leaky_relu2.runtime",))  # its eager parent class
