"""Default optimizer: Muon for block matrices, Adam for embeddings, head and control tensors."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="Muon (Nesterov + Newton-Schulz-5, batched by shape) for block matrices; fused Adam for the rest",
    evidence="baseline; Muon by K. Jordan (modded-nanogpt)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("MATRIX_LR", 0.04, "Muon learning rate for 2-D block matrices", ge=0.0)
    hp.float("MUON_MOMENTUM", 0.95, "Muon Nesterov momentum (after warmup)", ge=0.0, le=1.0)
    hp.int("MUON_BACKEND_STEPS", 5, "Newton-Schulz iterations", ge=1)
    hp.float("TIED_EMBED_LR", 0.05, "Adam lr of the tied embedding", ge=0.0)
    hp.float("EMBED_LR", 0.6, "Adam lr of the embedding when untied", ge=0.0)
    hp.float("HEAD_LR", 0.008, "Adam lr of the output head when untied", ge=0.0)
    hp.float("SCALAR_LR", 0.04, "Adam lr of vectors, scalars and skip weights", ge=0.0)
    hp.float("BETA1", 0.9, "Adam beta1", ge=0.0, le=1.0)
    hp.float("BETA2", 0.95, "Adam beta2", ge=0.0, le=1.0)
    hp.float("ADAM_EPS", 1e-8, "Adam epsilon", gt=0.0)


@hookimpl
def golfc_optimizer() -> Impl:
    return Impl(module="golfc_plugins.muon.runtime", symbols="build_muon_adam_optimizers")
