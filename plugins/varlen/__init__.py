"""VarLen attention: document-isolated (BOS-delimited) causal attention in training and in every evaluation."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="attention never crosses a BOS: causal inside each packed document (FlexAttention document mask when "
    "compiled on CUDA, block-diagonal masked SDPA elsewhere), training and evaluation; claims DOCUMENT_ISOLATED",
    evidence="2026-04-10_VarLenAttn (PR #1530) -> every later record: ~2% faster (flash varlen), ~0.001 nats",
    # bigram_hash hashes (previous, current) across a BOS: the last token of one document reaches the next one's
    # first prediction, which the documents probe (L18) fails
    conflicts=("bigram_hash",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("VARLEN_KERNEL", "auto", "auto (FlexAttention document mask when compiled on CUDA, else masked SDPA), "
           "flex or sdpa", choices=("auto", "flex", "sdpa"))


@hookimpl
def golfc_attention_kernel() -> Impl:
    return Impl(module="golfc_plugins.varlen.runtime", symbols="varlen_attention",
                requires=("golfc_plugins.sdpa_attention.runtime", "golfc_plugins.sdpa_attention.masks"))
