"""plugins/zlib_compress: exact inverse pair at level 9."""

from __future__ import annotations

import os
import zlib

from golfc.testing import load_program


def test_roundtrip_level_9():
    ns = load_program(overrides={"DEVICE": "cpu"})
    assert ns["COMPRESS_LABEL"] == "zlib"
    for raw in (b"", os.urandom(10_000), b"golf" * 5_000):
        blob = ns["zlib_compress"](raw)
        assert blob == zlib.compress(raw, 9) and ns["zlib_decompress"](blob) == raw
