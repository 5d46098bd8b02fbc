"""Shared fixtures: one small build of the shipped tiny corpus, reused by the tests that only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from golfc.data.build import DatasetPaths, build_dataset
from golfc.data.make_tiny_corpus import TINY_CORPUS_PATH

SMALL_VOCAB = 512
SMALL_SHARD_TOKENS = 300_000  # forces several train shards and one document straddling a boundary


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> DatasetPaths:
    out = tmp_path_factory.mktemp("tiny-build")
    return build_dataset(TINY_CORPUS_PATH, SMALL_VOCAB, out, shard_tokens=SMALL_SHARD_TOKENS)


@pytest.fixture()
def tiny_corpus() -> Path:
    return TINY_CORPUS_PATH
