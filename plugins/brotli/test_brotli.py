"""plugins/brotli: exact inverse pair at quality 11, the byte shuffle's layout, a missing package at start-up."""

from __future__ import annotations

import os

import brotli

from golfc.testing import load_program, run_without_package


def test_roundtrip_quality_11_without_shuffle():
    ns = load_program(("brotli",))
    assert ns["COMPRESS_LABEL"] == "brotli"
    for raw in (b"", os.urandom(5_000), b"golf" * 5_000):
        blob = ns["compress_bytes"](raw)
        assert blob == brotli.compress(raw, quality=11) and ns["decompress_bytes"](blob) == raw


def test_byte_shuffle_layout_and_inverse():
    ns = load_program(("brotli",), env={"BYTE_SHUFFLE": "2"})
    assert ns["brotli_shuffle"](b"abcdefg", 2) == b"BSHF\x02" + b"aceg" + b"bdf"
    assert ns["brotli_shuffle"](b"abcdefg", 3) == b"BSHF\x03" + b"adg" + b"be" + b"cf"
    for raw in (b"", b"x", os.urandom(5_001), bytes(range(256)) * 40):
        blob = ns["compress_bytes"](raw)
        assert brotli.decompress(blob).startswith(b"BSHF\x02") and ns["decompress_bytes"](blob) == raw
    for stride in (3, 7):
        assert ns["brotli_unshuffle"](ns["brotli_shuffle"](b"0123456789abc", stride)) == b"0123456789abc"


def test_a_missing_package_is_one_line_naming_it(tmp_path):
    proc = run_without_package(("brotli",), "brotli", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: the brotli compressor needs the Python package 'brotli' (pip install brotli)"
