"""The shipped public-domain slice: sources, size, a non-empty validation split, and a reproducible selection."""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import pytest

from golfc.data.docs import is_validation, read_documents
from golfc.data.make_tiny_corpus import PUBLIC_DOMAIN_SOURCES, TINY_CORPUS_PATH, make_tiny_corpus

STANDIN_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "standin-docs.jsonl.xz"
MAX_COMPRESSED_BYTES = 1_500_000


def test_slice_is_small_public_domain_with_validation_documents() -> None:
    assert TINY_CORPUS_PATH.stat().st_size <= MAX_COMPRESSED_BYTES
    documents = read_documents(TINY_CORPUS_PATH)
    assert 200 <= len(documents) <= 500
    assert {doc.src for doc in documents} == set(PUBLIC_DOMAIN_SOURCES)
    assert sum(is_validation(doc) for doc in documents) >= 20
    assert (TINY_CORPUS_PATH.parent / "README.md").is_file()


@pytest.mark.skipif(not STANDIN_CORPUS.is_file(), reason="the stand-in corpus (shared/data) is not available")
def test_selection_reproduces_the_shipped_file(tmp_path: Path) -> None:
    rebuilt = tmp_path / "tiny-docs.jsonl.xz"
    make_tiny_corpus(STANDIN_CORPUS, rebuilt)
    digest = hashlib.sha256(lzma.decompress(rebuilt.read_bytes())).hexdigest()
    assert digest == hashlib.sha256(lzma.decompress(TINY_CORPUS_PATH.read_bytes())).hexdigest()
