"""Value embeddings: a shared token table, projected to the value width, added to v on VE_LAYERS."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="v += s_l * ve_scale * proj(table(ids)) on each layer l of VE_LAYERS: one shared (vocab, VE_DIM) "
    "table, projection zero-init (the identity at init)",
    evidence="PR #374; 2026-03-22_11L_EMA_GPTQ-lite (PR #414) through 2026-04-03 (VE_DIM=128 VE_LAYERS=9,10); "
    "not isolated; removed in 2026-04-05",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("VE_DIM", 128, "width of the shared value-embedding table, projected to the value width", ge=1)
    hp.int_list("VE_LAYERS", (9, 10), "layers whose attention values get the embedding, e.g. 9,10 (negative: from "
                "the end, -1 the last)")


@hookimpl
def golfc_value_hook() -> Impl:
    return Impl(module="golfc_plugins.value_embed.runtime", symbols="ValueEmbedding")
