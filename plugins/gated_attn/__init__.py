"""GatedAttn: a dense per-head sigmoid gate on the attention output, g = sigmoid(W_g x) (an attention_post module)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="y_h <- sigmoid(W_g x)_h * y_h per head before the output projection; W_g (H, d) from the block input",
    evidence="Qwen gated attention (arXiv 2505.06708); 2026-04-19 GatedAttn_QuantGate (PR #1736), 04-22: bundled",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("GATED_ATTN_INIT_STD", 0.005, "std of the normal init of W_g (H, d)", ge=0.0)
    hp.bool("GATED_ATTN_QUANT_GATE", False, "store W_g as int8 per row with an fp16 scale (QuantGate) instead of fp32")


@hookimpl
def golfc_attention_post() -> Impl:
    # order 10: after transforms of y's direction (xsa, order 0), as the records gate the final attention output
    return Impl(module="golfc_plugins.gated_attn.runtime", symbols="GatedAttention", order=10)
