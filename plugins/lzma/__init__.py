"""Artifact compressor: LZMA (xz container), preset 9 by default."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="compress the artifact with LZMA (xz, preset LZMA_PRESET, default 9 extreme)",
    evidence="PR #160; records 2026-03-23, 03-25, 03-29 (lzma preset 9)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("LZMA_PRESET", 9, "xz preset 0-9 (9: smallest, slowest)", ge=0, le=9)
    hp.bool("LZMA_EXTREME", True, "add the xz 'extreme' flag to the preset")


@hookimpl
def golfc_compressor() -> Impl:
    return Impl(
        module="golfc_plugins.lzma.runtime",
        symbols={"compress_bytes": "lzma_compress", "decompress_bytes": "lzma_decompress",
                 "COMPRESS_LABEL": "LZMA_LABEL"},
    )
