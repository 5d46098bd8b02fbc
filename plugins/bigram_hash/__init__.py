"""BigramHash: a hashed (previous, current) token embedding added to the token embedding before its norm."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="e += scale * proj(table[hash(prev, cur)]): a zero-initialised bigram embedding before the norm",
    evidence="2026-03-20_Int6_MLP3x_SmearGate_BigramHash (PR #162); 4096 -> 8192 -> 10240 buckets: -0.0012, -0.0008",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("BIGRAM_VOCAB_SIZE", 4096, "hash buckets of the bigram table (the last one is position 0's)", ge=2)
    hp.int("BIGRAM_DIM", 128, "width of the bigram table, projected to MODEL_DIM", ge=1)
    hp.float("BIGRAM_SCALE_INIT", 0.05, "initial value of the learned output scale")


@hookimpl
def golfc_embedding_pre_norm() -> Impl:
    return Impl(module="golfc_plugins.bigram_hash.runtime", symbols="BigramHashEmbedding")
