"""NTK-aware RoPE: frequencies rebuilt with base * s^(D/(D-2)) for evaluations longer than TRAIN_SEQ_LEN."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="RoPE with the NTK-aware base for sequences longer than TRAIN_SEQ_LEN (eval at EVAL_SEQ_LEN)",
    evidence="2026-03-19_WarmdownQuantization (EVAL_SEQ_LEN=1408): claimed -0.007; eval@2048 neutral or worse "
    "once well trained",
)


@hookimpl
def golfc_position_encoding() -> Impl:
    return Impl(module="golfc_plugins.ntk_rope.runtime", symbols="ntk_position_encoding",
                requires=("golfc_plugins.rope.runtime",))
