"""AttnOutGate: a per-head gate 2 * sigmoid(W x[:window]) on the attention output, identity at init."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="y_h <- 2 sigmoid(W x[:ATTN_OUT_GATE_WINDOW])_h * y_h per head; W (H, 12) zero-init, so the identity "
    "at init",
    evidence="2026-04-16_SmearGate_AttentionOutputGate (PR #1667): 1.0719 -> 1.0714 bundled with SmearGate v2",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("ATTN_OUT_GATE_WINDOW", 12, "dims of the attention input the gate reads (the records' GATE_WINDOW)", ge=1)


@hookimpl
def golfc_attention_post() -> Impl:
    # order 10: after transforms of y's direction (xsa, order 0)
    return Impl(module="golfc_plugins.attn_out_gate.runtime", symbols="AttentionOutputGate", order=10)
