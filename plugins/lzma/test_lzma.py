"""plugins/lzma: exact inverse pair at the preset, and the preset knob."""

from __future__ import annotations

import lzma
import os

from golfc.testing import load_program


def test_roundtrip_at_preset_9_extreme():
    ns = load_program(("lzma",))
    assert ns["COMPRESS_LABEL"] == "lzma"
    for raw in (b"", os.urandom(5_000), b"golf" * 5_000):
        blob = ns["compress_bytes"](raw)
        assert blob == lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME) and ns["decompress_bytes"](blob) == raw


def test_preset_knob():
    ns = load_program(("lzma",), env={"LZMA_PRESET": "1", "LZMA_EXTREME": "0"})
    raw = b"golf" * 5_000
    assert ns["compress_bytes"](raw) == lzma.compress(raw, preset=1)
