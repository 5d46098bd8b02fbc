"""fp16_keep: tensors whose name contains one of FP16_KEEP_NAME_PATTERNS stay fp16 in the low-bit artifact."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="keep the tensors named by FP16_KEEP_NAME_PATTERNS in fp16 instead of quantizing them",
    evidence="PR #162 (FP16_KEEP_NAME_PATTERNS=tok_emb,blocks.8.attn.c_k); late-K passthrough PR #99",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("FP16_KEEP_NAME_PATTERNS", "tok_emb,stack.blocks.8.attn.c_k",
           "comma-separated substrings of state-dict names kept in fp16")


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("fp16_keep", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.fp16_keep.runtime", symbols="FP16_KEEP_STAGE")
