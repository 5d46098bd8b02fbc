"""Coprime-stride loader: every shard's sequence blocks visited once each in a coprime-stride order, shards mixed."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="random-phase blocks of each shard walked with a stride coprime to their count; batches mix shards "
    "drawn in proportion to remaining^alpha",
    evidence="PR #726 -> 2026-03-29_Loader_FullGPTQ (PR #1060), 04-01, 04-03: bundled (1.1147 -> 1.1122)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("LOADER_MIX_START", 8, "shards mixed in each batch at the start", ge=1)
    hp.int("LOADER_MIX_END", 32, "shards mixed in each batch after LOADER_RAMP_BATCHES", ge=1)
    hp.float("LOADER_ALPHA_START", 0.9, "shards drawn with probability proportional to remaining^alpha", ge=0.0)
    hp.float("LOADER_ALPHA_END", 0.5, "alpha after LOADER_RAMP_BATCHES", ge=0.0)
    hp.int("LOADER_RAMP_BATCHES", 1800, "batches over which mix and alpha move linearly to their end values", ge=1)


@hookimpl
def golfc_data_loader() -> Impl:
    return Impl(module="golfc_plugins.coprime_loader.runtime", symbols="CoprimeLoader")
