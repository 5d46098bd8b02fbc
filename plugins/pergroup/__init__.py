"""Artifact compressor: tensors grouped by role (rows optionally reordered, int8 matrices transposed), each large
group its own stream, compressed by the smallest of lzma / zstd / brotli installed (or the one named)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="compress the artifact by tensor role: int8 matrices grouped across layers and transposed, the rest "
            "byte-shuffled by element size, each large group compressed on its own (PERGROUP_BACKEND)",
    evidence="04-27 record PR #1855 (COMPRESSOR=pergroup, with lrzip/ZPAQ): ~280 KB under brotli; measured here "
             "without lrzip: see plugins/pergroup/README.md",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("PERGROUP_BACKEND", "auto", "auto (per stream the smallest of lzma, zstd and brotli installed), lzma, "
           "zstd or brotli", choices=("auto", "lzma", "zstd", "brotli"))
    hp.str("PERGROUP_REORDER", "greedy", "row order of the int8 matrices of PERGROUP_REORDER_PATTERNS: none, greedy "
           "(L1 nearest neighbour, permutation stored; O(rows^2 cols)), or auto (greedy where a role's group then "
           "compresses smaller by more than its permutations)", choices=("none", "greedy", "auto"))
    hp.str("PERGROUP_REORDER_PATTERNS", "mlp.proj", "roles (substrings, comma-separated) whose rows "
           "PERGROUP_REORDER reorders (the record's: tok_emb,c_q,mlp.fc; README: what paid here)")
    hp.bool("PERGROUP_TRANSPOSE", True, "store int8 matrices column by column")
    hp.bool("PERGROUP_SHUFFLE", True, "byte-shuffle each non-int8 group by its element size")
    hp.int("PERGROUP_STREAM_BYTES", 65536, "a group this large is compressed on its own (0: one stream)", ge=0)


@hookimpl
def golfc_compressor() -> Impl:
    return Impl(
        module="golfc_plugins.pergroup.runtime",
        symbols={"compress_bytes": "pergroup_compress", "decompress_bytes": "pergroup_decompress",
                 "COMPRESS_LABEL": "PERGROUP_LABEL"},
    )
