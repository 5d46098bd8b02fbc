"""Default train loader: one sequential stream over the sorted train shards, each rank a contiguous span."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="sequential token stream over sorted train shards, no shuffling", evidence="baseline")


@hookimpl
def golfc_data_loader() -> Impl:
    return Impl(module="golfc_plugins.token_stream_loader.runtime", symbols="TokenStreamLoader")
