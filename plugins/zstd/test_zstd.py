"""plugins/zstd: exact inverse pair at level 22; a missing zstandard package is one line at start-up."""

from __future__ import annotations

import os

import zstandard

from golfc.testing import load_program, run_without_package


def test_roundtrip_level_22():
    ns = load_program(("zstd",))
    assert ns["COMPRESS_LABEL"] == "zstd" and ns["Hyperparameters"].zstd_level == 22
    for raw in (b"", os.urandom(5_000), b"golf" * 5_000):
        blob = ns["compress_bytes"](raw)
        assert blob == zstandard.ZstdCompressor(level=22).compress(raw) and ns["decompress_bytes"](blob) == raw


def test_a_missing_package_is_one_line_naming_it(tmp_path):
    """An emitted program whose zstandard import fails stops before anything runs, naming the package."""
    proc = run_without_package(("zstd",), "zstandard", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: the zstd compressor needs the Python package 'zstandard' "
                                   "(pip install zstandard)")
