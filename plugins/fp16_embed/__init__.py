"""fp16_embed: the embedding (tok_emb, lm_head) stays fp16 in the low-bit artifact."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="keep the token embedding (and an untied head) in fp16 instead of quantizing it",
    evidence="2026-03-18_FP16Embed_WD3600: embedding quantization gap 0.007 -> 0.0005 bpb at ~+500 KB",
)


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("fp16_embed", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.fp16_embed.runtime", symbols="FP16_EMBED_STAGE")
