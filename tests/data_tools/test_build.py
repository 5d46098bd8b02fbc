"""``build_dataset`` / ``golfc data build`` on the shipped tiny corpus: layout, split order, BOS counts, determinism."""

from __future__ import annotations

import errno
import hashlib
import json
import lzma
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import golfc.data.build as build_module
from golfc.data.build import DatasetPaths, build_dataset, encode_documents
from golfc.data.command import data_app
from golfc.data.docs import is_validation, read_documents
from golfc.data.errors import DataError
from golfc.data.shards import BOS_ID, read_shard, scan_shard, validate_shard
from golfc.data.tokenizer import load_tokenizer, processor_from_bytes, train_tokenizer, training_sentences
from golfc.errors import OutputError

from .conftest import SMALL_SHARD_TOKENS, SMALL_VOCAB


def _digests(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _leftovers(root: Path) -> list[Path]:
    """Staging directories or half-written files that a finished (or failed) build must not leave behind."""
    return [*root.rglob(".golfc-staging-*"), *root.rglob("*.partial")]


def _one_line_cli_error(args: list[str]) -> str:
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr


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


def test_an_error_naming_a_path_with_brackets_prints_it_as_written(tmp_path: Path) -> None:
    """Error lines are never read as rich markup: a path like `runs/[red]x` comes out whole."""
    missing = tmp_path / "[red]docs[/]" / "[bold]nope.jsonl.xz"
    result = CliRunner().invoke(data_app, ["build", "--docs", str(missing), "--vocab", "512", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert str(missing) in result.stderr and result.stderr.strip().count("\n") == 0


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
    assert f"-o {blocker}: {blocker} is a file; expected a folder" in result.stderr


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_failed_forced_rebuild_leaves_the_previous_dataset(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, shard_tokens=SMALL_SHARD_TOKENS)
    before = _digests(tmp_path)
    val_texts = {doc.text for doc in read_documents(tiny_corpus) if is_validation(doc)}
    real_encode = build_module.encode_documents

    def fail_at_train_documents(processor: object, texts: list[str]) -> np.ndarray:
        if texts[0] not in val_texts:  # the tokenizer and the val shard are written by now
            raise failure
        return real_encode(processor, texts)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "encode_documents", fail_at_train_documents)
    with pytest.raises((DataError, KeyboardInterrupt)):
        build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, tokenizer_docs="train", force=True)
    assert _digests(tmp_path) == before, "a failed rebuild must leave tokenizer and shards as they were"
    assert _leftovers(tmp_path) == []


def test_failed_final_rename_restores_the_previous_dataset_and_names_the_target(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, shard_tokens=SMALL_SHARD_TOKENS)
    before = _digests(tmp_path)
    victim = first.val.shards[0]
    real_replace = os.replace
    failures: list[str] = []

    def replace_failing_once_onto_victim(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == victim and not failures:
            failures.append(str(src))
            raise OSError(errno.EIO, "Input/output error", str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_once_onto_victim)
    with pytest.raises(OutputError) as caught:
        build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, tokenizer_docs="train", force=True)
    message = str(caught.value)
    assert message.startswith(f"{victim}: cannot replace") and ".partial" not in message
    assert failures and _digests(tmp_path) == before
    assert _leftovers(tmp_path) == []


def test_directory_in_place_of_a_shard_is_refused_before_anything_changes(tiny_corpus: Path, tmp_path: Path) -> None:
    first = build_dataset(tiny_corpus, SMALL_VOCAB, tmp_path, shard_tokens=SMALL_SHARD_TOKENS)
    blocker = first.data_path / "fineweb_train_000007.bin"
    blocker.mkdir()
    before = _digests(tmp_path)
    args = ["build", "--docs", str(tiny_corpus), "--vocab", str(SMALL_VOCAB), "-o", str(tmp_path)]
    stderr = _one_line_cli_error([*args, "--force", "--tokenizer-docs", "train"])
    assert f"{blocker}: is a directory" in stderr
    assert _digests(tmp_path) == before and blocker.is_dir()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("vocab", [1, 256, 65537])
def test_vocab_out_of_range_is_refused_before_reading_documents(tmp_path: Path, vocab: int) -> None:
    missing = tmp_path / "absent.jsonl"
    stderr = _one_line_cli_error(["build", "--docs", str(missing), "--vocab", str(vocab), "-o", str(tmp_path / "o")])
    assert f"--vocab {vocab}: expected 261..65536" in stderr
    assert not (tmp_path / "o").exists()


def test_vocab_below_what_the_corpus_needs_says_which_sizes_work(tiny_corpus: Path, tmp_path: Path) -> None:
    args = ["build", "--docs", str(tiny_corpus), "--vocab", "300", "-o", str(tmp_path)]
    stderr = _one_line_cli_error(args)
    assert "--vocab 300: too small for the 321 pieces" in stderr and "expected 321..65536" in stderr
    assert "character_coverage" not in stderr and "INTERNAL" not in stderr
    texts = [doc.text for doc in read_documents(tiny_corpus)]
    assert processor_from_bytes(train_tokenizer(texts, 321)).vocab_size() == 321, "the advertised minimum works"


def test_output_that_is_a_file_is_refused_before_reading_documents(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me\n")
    missing = tmp_path / "absent.jsonl"
    stderr = _one_line_cli_error(["build", "--docs", str(missing), "--vocab", str(SMALL_VOCAB), "-o", str(blocker)])
    assert f"-o {blocker}: {blocker} is a file; expected a folder" in stderr and "documents file" not in stderr
    assert blocker.read_text() == "keep me\n"


def test_docs_directory_says_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory; expected a documents file"):
        build_dataset(tmp_path, SMALL_VOCAB, tmp_path / "out")


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.xz"])
def test_non_utf8_reports_line_and_true_offset(tmp_path: Path, suffix: str) -> None:
    lines = [json.dumps({"src": "t", "id": str(i), "text": "word " * 200}).encode() + b"\n" for i in range(60)]
    lines[50] = lines[50].replace(b"word", b"w\xffrd", 1)
    offset = sum(len(line) for line in lines[:50]) + lines[50].index(b"\xff")
    assert offset > 8192, "past the text decoder's first chunk, where a chunk-relative offset would be wrong"
    content = b"".join(lines)
    path = tmp_path / f"docs{suffix}"
    path.write_bytes(lzma.compress(content) if suffix.endswith(".xz") else content)
    with pytest.raises(DataError) as caught:
        read_documents(path)
    assert str(caught.value).startswith(f"{path}:51: expected UTF-8 text")
    assert f"at byte {offset} of the" in str(caught.value)
