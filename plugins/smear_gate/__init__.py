"""SmearGate v2, BOS-masked: e_t += lambda * sigmoid(W e_t[:12]) * e_{t-1} before the embedding norm."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="e_t += lambda * sigmoid(W e_t[:SMEAR_GATE_WINDOW]) * e_{t-1} before the embedding norm; zero at init; "
    "masked at BOS",
    evidence="v2: 2026-04-16_SmearGate_AttentionOutputGate (PR #1667), 1.0719 -> 1.0714 with the attention gate; "
    "BOS fix: PR #1851/#1855 (2026-04-27), a legality fix",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SMEAR_GATE_WINDOW", 12, "embedding dims the gate reads (the records' GATE_WINDOW)", ge=1)
    hp.bool("SMEAR_BOS_MASK", True, "never smear the previous token into a BOS (a document start)")


@hookimpl
def golfc_embedding_pre_norm() -> Impl:
    # order 10: after any additions to the embedding (bigram_hash, order 0), as on the records' raw embedding
    return Impl(module="golfc_plugins.smear_gate.runtime", symbols="SmearGate", order=10)
