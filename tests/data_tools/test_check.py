"""``golfc data check``: a table for a good dataset; one-line errors for a bad shard or a vocab mismatch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golfc.data.build import DatasetPaths
from golfc.data.check import check_dataset
from golfc.data.command import data_app
from golfc.data.errors import DataError, TokenizerMismatchError
from golfc.data.shards import write_shard

from .conftest import SMALL_VOCAB


def _check(data_path: Path, tokenizer: Path, vocab: int) -> tuple[int, str, str]:
    args = ["check", str(data_path), "--tokenizer", str(tokenizer), "--vocab", str(vocab)]
    result = CliRunner().invoke(data_app, args)
    return result.exit_code, result.stdout, result.stderr


def test_check_reports_files_tokens_and_docs(tiny_build: DatasetPaths) -> None:
    report = check_dataset(tiny_build.data_path, tiny_build.tokenizer_path, SMALL_VOCAB)
    assert report.split("val").docs == tiny_build.val.docs and report.split("train").docs == tiny_build.train.docs
    assert report.split("train").tokens == tiny_build.train.tokens
    code, stdout, _ = _check(tiny_build.data_path, tiny_build.tokenizer_path, SMALL_VOCAB)
    assert code == 0
    assert "fineweb_val_000000.bin" in stdout and f"{tiny_build.train.tokens:,}" in stdout
    assert f"{len(report.shards)} shards valid" in stdout


def test_check_accepts_the_data_root(tiny_build: DatasetPaths) -> None:
    code, stdout, _ = _check(tiny_build.root, tiny_build.tokenizer_path, SMALL_VOCAB)
    assert code == 0 and "shards valid" in stdout


def test_vocab_mismatch_is_one_line_error(tiny_build: DatasetPaths) -> None:
    with pytest.raises(TokenizerMismatchError, match="vocab size 512, expected 1024"):
        check_dataset(tiny_build.data_path, tiny_build.tokenizer_path, 1024)
    code, _, stderr = _check(tiny_build.data_path, tiny_build.tokenizer_path, 1024)
    assert code == 2 and stderr.strip().count("\n") == 0
    assert str(tiny_build.tokenizer_path) in stderr and "expected 1024" in stderr


@pytest.fixture()
def dataset_copy(tiny_build: DatasetPaths, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(tiny_build.data_path, copy)
    return copy


def test_corrupt_shard_is_one_line_error_naming_it(tiny_build: DatasetPaths, dataset_copy: Path) -> None:
    victim = dataset_copy / "fineweb_train_000001.bin"
    victim.write_bytes(victim.read_bytes()[:-4])
    code, _, stderr = _check(dataset_copy, tiny_build.tokenizer_path, SMALL_VOCAB)
    assert code == 2 and stderr.strip().count("\n") == 0 and str(victim) in stderr


def test_token_ids_beyond_vocab_are_rejected(tiny_build: DatasetPaths, dataset_copy: Path) -> None:
    write_shard(dataset_copy / "fineweb_train_000099.bin", [1, SMALL_VOCAB])
    with pytest.raises(DataError, match=f"token id {SMALL_VOCAB}, expected ids below"):
        check_dataset(dataset_copy, tiny_build.tokenizer_path, SMALL_VOCAB)


def test_missing_split_and_missing_tokenizer(tiny_build: DatasetPaths, dataset_copy: Path, tmp_path: Path) -> None:
    for path in dataset_copy.glob("fineweb_val_*.bin"):
        path.unlink()
    with pytest.raises(DataError, match="no fineweb_val"):
        check_dataset(dataset_copy, tiny_build.tokenizer_path, SMALL_VOCAB)
    with pytest.raises(DataError, match="tokenizer model not found"):
        check_dataset(dataset_copy, tmp_path / "absent.model", SMALL_VOCAB)
    not_a_model = tmp_path / "bogus.model"
    not_a_model.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a SentencePiece model"):
        check_dataset(dataset_copy, not_a_model, SMALL_VOCAB)


def test_a_split_of_empty_shards_is_rejected(tiny_build: DatasetPaths, dataset_copy: Path) -> None:
    """The run would have nothing to train on (its loader now refuses to loop over empty shards forever)."""
    write_shard(dataset_copy / "fineweb_train_000099.bin", [])
    assert check_dataset(dataset_copy, tiny_build.tokenizer_path, SMALL_VOCAB)  # one empty shard among full ones
    for path in dataset_copy.glob("fineweb_train_*.bin"):
        write_shard(path, [])
    with pytest.raises(DataError, match=r"every fineweb_train_\*\.bin shard is empty"):
        check_dataset(dataset_copy, tiny_build.tokenizer_path, SMALL_VOCAB)
