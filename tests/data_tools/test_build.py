"""``build_dataset`` / ``golfc data build`` on the shipped tiny corpus: layout, split order, BOS counts, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from golfc.data.build import DatasetPaths, build_dataset, encode_documents
from golfc.data.command import data_app
from golfc.data.docs import is_validation, read_documents
from golfc.data.errors import DataError
from golfc.data.shards import BOS_ID, read_shard, scan_shard, validate_shard
from golfc.data.tokenizer import load_tokenizer, training_sentences

from .conftest import SMALL_SHARD_TOKENS, SMALL_VOCAB


def _digests(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_layout_matches_the_training_script(tiny_build: DatasetPaths) -> None:
    root = tiny_build.root
    assert tiny_build.data_path == root / "datasets" / f"fineweb10B_sp{SMALL_VOCAB}"
    assert tiny_build.tokenizer_path == root / "tokenizers" / f"fineweb_{SMALL_VOCAB}_bpe.model"
    assert tiny_build.vocab_path.is_file()
    assert tiny_build.env() == {
        "DATA_PATH": str(tiny_build.data_path),
        "TOKENIZER_PATH": str(tiny_build.tokenizer_path),
        "VOCAB_SIZE": str(SMALL_VOCAB),
    }
    names = sorted(p.name for p in tiny_build.data_path.iterdir())
    assert names[0] == "fineweb_train_000000.bin" and names[-1] == "fineweb_val_000000.bin"
    assert len(tiny_build.train.shards) > 1, "the small shard size should force several train shards"
    assert not list(root.rglob("*.partial"))


def test_shards_are_valid_and_bos_counts_documents(tiny_build: DatasetPaths, tiny_corpus: Path) -> None:
    documents = read_documents(tiny_corpus)
    n_val = sum(is_validation(doc) for doc in documents)
    assert tiny_build.val.docs == n_val > 0
    assert tiny_build.train.docs == len(documents) - n_val
    for stats in (tiny_build.val, tiny_build.train):
        scans = [scan_shard(path) for path in stats.shards]
        assert sum(scan.bos_count for scan in scans) == stats.docs
        assert sum(scan.num_tokens for scan in scans) == stats.tokens
        assert all(scan.max_token is not None and scan.max_token < SMALL_VOCAB for scan in scans)
        assert all(validate_shard(path).num_tokens <= SMALL_SHARD_TOKENS for path in stats.shards)


def test_validation_documents_come_first_as_bos_plus_encoding(tiny_build: DatasetPaths, tiny_corpus: Path) -> None:
    documents = read_documents(tiny_corpus)
    processor = load_tokenizer(tiny_build.tokenizer_path)
    validation = [doc.text for doc in documents if is_validation(doc)]
    train = [doc.text for doc in documents if not is_validation(doc)]
    val_stream = np.concatenate([read_shard(path) for path in tiny_build.val.shards])
    train_stream = np.concatenate([read_shard(path) for path in tiny_build.train.shards])
    np.testing.assert_array_equal(val_stream, encode_documents(processor, validation))
    np.testing.assert_array_equal(train_stream, encode_documents(processor, train))
    first_ids = processor.encode(validation[0])
    assert val_stream[0] == BOS_ID and list(val_stream[1 : 1 + len(first_ids)]) == first_ids


def test_rebuild_is_byte_identical(tiny_build: DatasetPaths, tiny_corpus: Path, tmp_path: Path) -> None:
    again = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path / "again", shard_tokens=SMALL_SHARD_TOKENS)
    assert _digests(again.root) == _digests(tiny_build.root)


def test_existing_shards_need_force_and_stale_ones_go(tiny_corpus: Path, tmp_path: Path) -> None:
    first = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, shard_tokens=100_000)
    with pytest.raises(DataError, match="already holds"):
        build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path)
    assert _digests(tmp_path), "a refused build must leave the previous one in place"
    second = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, force=True)
    assert len(first.train.shards) > len(second.train.shards) == 1
    assert sorted(second.data_path.iterdir()) == sorted(second.val.shards + second.train.shards)


def test_max_docs_and_train_only_tokenizer(tiny_corpus: Path, tmp_path: Path) -> None:
    paths = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, max_docs=150, tokenizer_docs="train")
    assert paths.val.docs + paths.train.docs == 150 and paths.val.docs > 0


def test_missing_docs_file_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl.xz"
    result = CliRunner().invoke(data_app, ["build", "--docs", str(missing), "--vocab", "512", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and str(missing) in result.stderr
    assert "documents file not found" in result.stderr
    assert not (tmp_path / "datasets").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [("not json\n", ":1: expected a JSON object"), ('{"src": "a", "id": "1"}\n', "string field 'text'"), ("", "none")],
)
def test_malformed_docs_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=expected):
        build_dataset(path, SMALL_VOCAB, tmp_path / "out")


def test_no_validation_documents_is_an_error(tiny_corpus: Path, tmp_path: Path) -> None:
    documents = read_documents(tiny_corpus)
    first_val = next(i for i, doc in enumerate(documents) if is_validation(doc))
    with pytest.raises(DataError, match="validation split"):
        build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, max_docs=max(first_val, 1))


def test_vocab_too_small_is_one_line_error(tiny_corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(data_app, ["build", "--docs", str(tiny_corpus), "--vocab", "256", "-o", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert "vocab 256" in result.stderr


def test_cli_build_prints_training_env(tiny_corpus: Path, tmp_path: Path) -> None:
    args = ["build", "--docs", str(tiny_corpus), "--vocab", str(SMALL_VOCAB), "-o", str(tmp_path)]
    result = CliRunner().invoke(data_app, [*args, "--shard-tokens", "500000"])
    assert result.exit_code == 0, result.output
    data_path = tmp_path / "datasets" / f"fineweb10B_sp{SMALL_VOCAB}"
    assert f"DATA_PATH={data_path}" in result.stdout.splitlines()
    assert f"TOKENIZER_PATH={tmp_path / 'tokenizers' / f'fineweb_{SMALL_VOCAB}_bpe.model'}" in result.stdout
    assert f"VOCAB_SIZE={SMALL_VOCAB}" in result.stdout.splitlines()
    assert len(list(data_path.glob("fineweb_train_*.bin"))) == 3


def test_training_sentences_pack_paragraphs_under_the_limit() -> None:
    text = "\n\n".join(["a" * 30] * 10)
    assert training_sentences(text, max_bytes=1000) == [text]
    chunks = training_sentences(text, max_bytes=70)
    assert chunks == ["a" * 30 + "\n\n" + "a" * 30] * 5
    assert training_sentences("b" * 100 + "\n\nc", max_bytes=50) == ["b" * 100, "c"]


def test_output_that_is_a_file_is_one_line_error(tiny_corpus: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    args = ["build", "--docs", str(tiny_corpus), "--vocab", str(SMALL_VOCAB), "-o", str(blocker)]
    result = CliRunner().invoke(data_app, [*args, "--max-docs", "150"])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert str(blocker) in result.stderr and "cannot write" in result.stderr
