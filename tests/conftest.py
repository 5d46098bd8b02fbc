"""Shared fixtures for golfc's own tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from golfc.testing import PluginDir


@pytest.fixture
def plugin_dir(tmp_path: Path):
    """A fresh --plugins-dir; loose plugins and their run-time modules are forgotten afterwards."""
    root = tmp_path / "golfc_plugins_dir"
    root.mkdir()
    before = set(sys.modules)
    yield PluginDir(root)
    for name in set(sys.modules) - before:
        if name.startswith("golfc_local_plugins") or name.endswith("_runtime"):
            del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Challenge-format shards and a 384-piece tokenizer built from golfc's shipped tiny corpus."""
    import golfc.data
    from golfc.data.build import build_dataset

    corpus = Path(golfc.data.__file__).parent / "corpus" / "tiny-docs.jsonl.xz"
    return build_dataset(corpus, 384, tmp_path_factory.mktemp("tiny_data"))
