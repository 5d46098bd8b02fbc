"""Leaky fixture (L18, never shipped): document-isolated attention with a SmearGate that crosses BOS."""

from __future__ import annotations

from golfc import HParams, Impl, hookimpl


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.bool("LEAKY_SMEAR_BOS_MASK", False, "mask the smear at BOS positions (the legal form)")


@hookimpl
def golfc_attention_kernel() -> Impl:
    return Impl(module="leaky_smear_runtime", symbols="leaky_document_attention")


@hookimpl
def golfc_embedding_pre_norm() -> Impl:
    return Impl(module="leaky_smear_runtime", symbols="LeakyRememberIds")


@hookimpl
def golfc_embedding_extras() -> Impl:
    return Impl(module="leaky_smear_runtime", symbols="LeakySmearGate")
