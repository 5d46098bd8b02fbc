"""plugins/zstd: exact inverse pair at level 22; a missing zstandard package is one line at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import zstandard

from golfc.build import build_submission
from golfc.testing import load_program


def test_roundtrip_level_22():
    ns = load_program(("zstd",))
    assert ns["COMPRESS_LABEL"] == "zstd" and ns["Hyperparameters"].zstd_level == 22
    for raw in (b"", os.urandom(5_000), b"golf" * 5_000):
        blob = ns["compress_bytes"](raw)
        assert blob == zstandard.ZstdCompressor(level=22).compress(raw) and ns["decompress_bytes"](blob) == raw


def test_a_missing_package_is_one_line_naming_it(tmp_path):
    """An emitted program whose zstandard import fails stops before anything runs, naming the package."""
    build_submission(("zstd",), {}, tmp_path / "out")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "zstandard.py").write_text("raise ImportError('blocked for the test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path / "out", env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: the zstd compressor needs the Python package 'zstandard' "
                                   "(pip install zstandard)")
