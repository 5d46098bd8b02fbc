"""Shard format: roundtrip, streaming into several shards, and one-line errors for each corrupt case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golfc.data.errors import DataError, ShardError
from golfc.data.shards import (
    HEADER_BYTES,
    SHARD_MAGIC,
    ShardStreamWriter,
    find_shards,
    read_header,
    read_shard,
    scan_shard,
    validate_shard,
    write_shard,
)
from golfc.errors import GolfcError


def test_roundtrip_keeps_tokens_and_header(tmp_path: Path) -> None:
    tokens = np.array([1, 5, 65535, 0, 1, 2, 3], dtype=np.uint16)
    path = tmp_path / "fineweb_val_000000.bin"
    info = write_shard(path, tokens)
    assert info.num_tokens == tokens.size
    assert path.stat().st_size == HEADER_BYTES + 2 * tokens.size
    header = read_header(path)
    assert list(header[:3]) == [SHARD_MAGIC, 1, tokens.size] and not header[3:].any()
    np.testing.assert_array_equal(read_shard(path), tokens)
    assert scan_shard(path).bos_count == 2 and scan_shard(path).max_token == 65535
    assert not list(tmp_path.glob("*.partial"))


def test_empty_shard_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    write_shard(path, [])
    assert validate_shard(path).num_tokens == 0 and read_shard(path).size == 0


def test_token_out_of_uint16_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="uint16"):
        write_shard(tmp_path / "big.bin", [1, 70000])


def test_stream_writer_splits_into_named_shards(tmp_path: Path) -> None:
    writer = ShardStreamWriter(tmp_path, "train", shard_tokens=4)
    writer.write(np.arange(1, 8, dtype=np.uint16))
    writer.write(np.arange(8, 11, dtype=np.uint16))
    infos = writer.close()
    assert [info.path.name for info in infos] == [f"fineweb_train_00000{i}.bin" for i in range(3)]
    assert [info.num_tokens for info in infos] == [4, 4, 2]
    assert find_shards(tmp_path, "train") == [info.path for info in infos]
    stream = np.concatenate([read_shard(info.path) for info in infos])
    np.testing.assert_array_equal(stream, np.arange(1, 11))


def _corrupt(path: Path, offset: int, value: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 4] = np.array([value], dtype="<i4").tobytes()
    path.write_bytes(bytes(raw))


def _one_line_error(path: Path) -> str:
    with pytest.raises(ShardError) as caught:
        validate_shard(path)
    message = str(caught.value)
    assert isinstance(caught.value, GolfcError) and isinstance(caught.value, DataError)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture()
def good_shard(tmp_path: Path) -> Path:
    path = tmp_path / "fineweb_train_000000.bin"
    write_shard(path, np.arange(100, dtype=np.uint16))
    return path


def test_wrong_magic(good_shard: Path) -> None:
    _corrupt(good_shard, 0, 12345)
    assert "magic 12345, expected 20240520" in _one_line_error(good_shard)


def test_wrong_version(good_shard: Path) -> None:
    _corrupt(good_shard, 4, 7)
    assert "version 7, expected 1" in _one_line_error(good_shard)


def test_truncated_file(good_shard: Path) -> None:
    good_shard.write_bytes(good_shard.read_bytes()[:-2])
    assert "expected 1224" in _one_line_error(good_shard)


def test_trailing_bytes(good_shard: Path) -> None:
    good_shard.write_bytes(good_shard.read_bytes() + b"\0\0")
    assert "file is 1226 bytes, expected 1224" in _one_line_error(good_shard)


def test_token_count_disagrees_with_size(good_shard: Path) -> None:
    _corrupt(good_shard, 8, 101)
    assert "expected 1226" in _one_line_error(good_shard)


def test_shorter_than_header(tmp_path: Path) -> None:
    path = tmp_path / "stub.bin"
    path.write_bytes(b"\0" * 10)
    assert "1024-byte header" in _one_line_error(path)


def test_missing_shard(tmp_path: Path) -> None:
    assert "not found" in _one_line_error(tmp_path / "absent.bin")
