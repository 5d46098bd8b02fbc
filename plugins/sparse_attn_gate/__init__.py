"""SparseAttnGate: a per-head gate sigmoid(scale * W x[:window]) on the attention output (PR #1787)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="y_h <- sigmoid(SPARSE_ATTN_GATE_SCALE * W x[:SPARSE_ATTN_GATE_WINDOW])_h * y_h; W (H, 12) zero-init",
    evidence="2026-04-23 SparseGate PolarNS (PR #1787), 04-27 (PR #1855): 'no BPB cost' vs the dense gate, ~44 KB "
    "smaller",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SPARSE_ATTN_GATE_WINDOW", 12, "dims of the attention input the gate reads (the records' GATE_WINDOW)",
           ge=1)
    hp.float("SPARSE_ATTN_GATE_SCALE", 0.5, "multiplies W x before the sigmoid (PR #1855: 0.5; PR #1787: 1.0)")
    hp.float("SPARSE_ATTN_GATE_INIT_STD", 0.0, "std of the normal init of W (0: zeros, the records' default)", ge=0.0)


@hookimpl
def golfc_attention_post() -> Impl:
    # order 10: after transforms of y's direction (xsa, order 0)
    return Impl(module="golfc_plugins.sparse_attn_gate.runtime", symbols="SparseAttentionGate", order=10)
