"""Default artifact compressor: zlib level 9."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="zlib level 9", evidence="baseline")


@hookimpl
def golfc_compressor() -> Impl:
    return Impl(
        module="golfc_plugins.zlib_compress.runtime",
        symbols={
            "compress_bytes": "zlib_compress",
            "decompress_bytes": "zlib_decompress",
            "COMPRESS_LABEL": "ZLIB_LABEL",
        },
    )
