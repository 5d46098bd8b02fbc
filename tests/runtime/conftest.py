"""Fixtures for the run-time core's tests: the assembled default program and a tiny dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from golfc.data.build import build_dataset
from golfc.testing import cut_validation, load_program

REPO = Path(__file__).resolve().parents[2]
TINY_CORPUS = REPO / "golfc" / "data" / "corpus" / "tiny-docs.jsonl.xz"
TINY_VOCAB = 512

# A model small enough for CPU tests; every other hyperparameter keeps the baseline default.
TINY = {
    "VOCAB_SIZE": str(TINY_VOCAB),
    "NUM_LAYERS": "2",
    "MODEL_DIM": "64",
    "NUM_HEADS": "2",
    "NUM_KV_HEADS": "1",
    "TRAIN_SEQ_LEN": "64",
    "TRAIN_BATCH_TOKENS": "4096",
    "VAL_BATCH_SIZE": "4096",
    "DEVICE": "cpu",
}


@pytest.fixture(scope="session")
def tiny_overrides():
    """TINY, for tests that load their own program (to add hooks or change a setting)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def program():
    """Namespace of the default program at the baseline's defaults (main() not run). Do not mutate."""
    return load_program()


@pytest.fixture(scope="session")
def tiny_program():
    """Namespace of the default program with TINY pinned. Do not mutate."""
    return load_program(overrides=TINY)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Challenge-format shards and tokenizer (vocab 512) built from golfc's tiny public-domain corpus, each validation
    document cut to its first TINY_VAL_DOC_TOKENS tokens as in the top-level fixture (main()'s evaluations were most
    of a tiny run's time; no test here depends on the length of the validation split)."""
    return cut_validation(build_dataset(TINY_CORPUS, TINY_VOCAB, tmp_path_factory.mktemp("tiny_data")))
