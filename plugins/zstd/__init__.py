"""Artifact compressor: Zstandard at level 22 (package zstandard)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="compress the artifact with Zstandard (level ZSTD_LEVEL, default 22; needs the zstandard package)",
    evidence="2026-03-19_MLP3x_QAT_Int6 and the 03-20..03-22 records (zstd-22): ~1.5 MB smaller than zlib on int6",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("ZSTD_LEVEL", 22, "zstd level 1-22 (20-22 are 'ultra')", ge=1, le=22)


@hookimpl
def golfc_compressor() -> Impl:
    return Impl(
        module="golfc_plugins.zstd.runtime",
        symbols={"compress_bytes": "zstd_compress", "decompress_bytes": "zstd_decompress",
                 "COMPRESS_LABEL": "ZSTD_LABEL"},
    )
