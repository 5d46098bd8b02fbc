"""Artifact compressor: Brotli at quality 11, optionally after a byte shuffle (package brotli)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="compress the artifact with Brotli (quality BROTLI_QUALITY, default 11), optional byte shuffle first",
    evidence="PR #1089, records 2026-03-31 .. 04-23 (brotli-11 + byte shuffle): ~400 KB under LZMA (PR #1287)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("BROTLI_QUALITY", 11, "brotli quality 0-11", ge=0, le=11)
    hp.int("BYTE_SHUFFLE", 0, "byte-shuffle stride before brotli (2: the records'; 0: off)", ge=0, le=255)


@hookimpl
def golfc_compressor() -> Impl:
    return Impl(
        module="golfc_plugins.brotli.runtime",
        symbols={"compress_bytes": "brotli_compress", "decompress_bytes": "brotli_decompress",
                 "COMPRESS_LABEL": "BROTLI_LABEL"},
    )
