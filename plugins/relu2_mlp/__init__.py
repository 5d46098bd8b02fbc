"""Default MLP: relu(x W1^T)^2 W2^T, output projection zero-initialised."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="relu^2 MLP of width MLP_MULT*d (baseline)", evidence="baseline; modded-nanogpt")


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("MLP_MULT", 2, "MLP hidden width = MLP_MULT * MODEL_DIM", ge=1)


@hookimpl
def golfc_mlp() -> Impl:
    return Impl(module="golfc_plugins.relu2_mlp.runtime", symbols="ReluSquaredMLP")
