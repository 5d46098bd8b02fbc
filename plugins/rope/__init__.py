"""Default position encoding: the baseline's RoPE (half-split rotation, base ROPE_BASE, reference-exact tables)."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="rotary position encoding of q and k (baseline; ROPE_BASE, ROPE_BF16_TABLES)",
                          evidence="baseline (2026-03-17_NaiveBaseline); modded-nanogpt")


@hookimpl
def golfc_position_encoding() -> Impl:
    return Impl(module="golfc_plugins.rope.runtime", symbols="rope_position_encoding")
