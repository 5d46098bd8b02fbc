"""Challenge-format token shards: a 256 x int32 little-endian header, then uint16 tokens.

Header: ``[0] = 20240520`` (magic), ``[1] = 1`` (version), ``[2] = num_tokens``; the rest is zero. A valid file is
exactly ``1024 + 2 * num_tokens`` bytes long. Writes go to a temporary file that replaces the target only when
complete, so an interrupted build never leaves a half-written shard under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from golfc.data.errors import ShardError

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_BYTES = 2
MAX_TOKEN_ID = np.iinfo(np.uint16).max
BOS_ID = 1
DEFAULT_SHARD_TOKENS = 100_000_000  # the official export's shard size
HEADER_DTYPE = np.dtype("<i4")
TOKEN_DTYPE = np.dtype("<u2")


@dataclass(frozen=True)
class ShardInfo:
    """What a validated shard holds."""

    path: Path
    num_tokens: int


def shard_name(split: str, index: int) -> str:
    """``fineweb_train_000000.bin`` style names, as the official export uses."""
    return f"fineweb_{split}_{index:06d}.bin"


def _header(num_tokens: int) -> np.ndarray:
    header = np.zeros(HEADER_INTS, dtype=HEADER_DTYPE)
    header[0] = SHARD_MAGIC
    header[1] = SHARD_VERSION
    header[2] = num_tokens
    return header


def _as_tokens(path: Path, tokens: Iterable[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(tokens if isinstance(tokens, np.ndarray) else list(tokens))
    if array.size and (array.min() < 0 or array.max() > MAX_TOKEN_ID):
        raise ShardError(f"{path}: token ids must fit in uint16 (0..{MAX_TOKEN_ID}), got {array.min()}..{array.max()}")
    return array.astype(TOKEN_DTYPE, copy=False)


def write_shard(path: Path, tokens: Iterable[int] | np.ndarray) -> ShardInfo:
    """Write ``tokens`` as one shard at ``path`` (atomically); returns its info."""
    array = _as_tokens(path, tokens)
    shard = ShardFile(path)
    try:
        shard.append(array)
    except BaseException:
        shard.discard()
        raise
    return shard.finish()


class ShardFile:
    """A shard being written in pieces to ``NAME.partial``; ``finish`` completes the header and renames it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.num_tokens = 0
        self._temp_path = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO = self._temp_path.open("wb")
        self._handle.write(_header(0).tobytes())

    def append(self, tokens: np.ndarray) -> None:
        self._handle.write(_as_tokens(self.path, tokens).tobytes())
        self.num_tokens += int(tokens.size)

    def finish(self) -> ShardInfo:
        self._handle.seek(0)
        self._handle.write(_header(self.num_tokens).tobytes())
        self._handle.close()
        os.replace(self._temp_path, self.path)
        return ShardInfo(path=self.path, num_tokens=self.num_tokens)

    def discard(self) -> None:
        self._handle.close()
        self._temp_path.unlink(missing_ok=True)


class ShardStreamWriter:
    """Splits one token stream into shards of ``shard_tokens`` tokens: ``fineweb_{split}_000000.bin``, ...

    Documents may straddle two shards, as in the official export; the loader reads the shards as one stream.
    """

    def __init__(self, directory: Path, split: str, shard_tokens: int = DEFAULT_SHARD_TOKENS) -> None:
        if shard_tokens < 1:
            raise ShardError(f"shard size for {split}: expected at least 1 token per shard, got {shard_tokens}")
        self.directory = directory
        self.split = split
        self.shard_tokens = shard_tokens
        self.written: list[ShardInfo] = []
        self._current: ShardFile | None = None

    def _close_current(self) -> None:
        if self._current is not None:
            self.written.append(self._current.finish())
            self._current = None

    def write(self, tokens: np.ndarray) -> None:
        start = 0
        while start < tokens.size:
            if self._current is None:
                self._current = ShardFile(self.directory / shard_name(self.split, len(self.written)))
            room = self.shard_tokens - self._current.num_tokens
            self._current.append(tokens[start : start + room])
            start += room
            if self._current.num_tokens >= self.shard_tokens:
                self._close_current()

    def close(self) -> list[ShardInfo]:
        """Finish the last shard; returns every shard written, in order."""
        self._close_current()
        return self.written

    def abort(self) -> None:
        """Drop the shard in progress (after an error); complete shards stay."""
        if self._current is not None:
            self._current.discard()
            self._current = None


def read_header(path: Path) -> np.ndarray:
    """The 256 header ints of ``path``; a file shorter than a header is a ShardError."""
    if not path.is_file():
        raise ShardError(f"{path}: shard not found")
    with path.open("rb") as handle:
        raw = handle.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: expected a {HEADER_BYTES}-byte header, file has only {len(raw)} bytes")
    return np.frombuffer(raw, dtype=HEADER_DTYPE)


def validate_shard(path: Path) -> ShardInfo:
    """Check magic, version and exact size as the training script's loader does; returns the shard's info."""
    header = read_header(path)
    magic, version, num_tokens = (int(value) for value in header[:3])
    if magic != SHARD_MAGIC:
        raise ShardError(f"{path}: bad magic {magic}, expected {SHARD_MAGIC} (not a challenge-format shard)")
    if version != SHARD_VERSION:
        raise ShardError(f"{path}: unsupported version {version}, expected {SHARD_VERSION}")
    if num_tokens < 0:
        raise ShardError(f"{path}: negative token count {num_tokens} in header")
    expected_size = HEADER_BYTES + TOKEN_BYTES * num_tokens
    actual_size = path.stat().st_size
    if actual_size != expected_size:
        raise ShardError(
            f"{path}: file is {actual_size} bytes, expected {expected_size} (1024 + 2 * {num_tokens} tokens)"
        )
    return ShardInfo(path=path, num_tokens=num_tokens)


def read_shard(path: Path) -> np.ndarray:
    """The tokens of a validated shard, as uint16."""
    info = validate_shard(path)
    with path.open("rb") as handle:
        handle.seek(HEADER_BYTES)
        return np.fromfile(handle, dtype=TOKEN_DTYPE, count=info.num_tokens)


@dataclass(frozen=True)
class ShardScan:
    """What a pass over a shard's tokens found: document starts (BOS count) and the largest token id."""

    path: Path
    num_tokens: int
    bos_count: int
    max_token: int | None


def scan_shard(path: Path, chunk_tokens: int = 1 << 24) -> ShardScan:
    """Validate ``path`` and read its tokens in chunks, counting BOS tokens and finding the largest id."""
    info = validate_shard(path)
    bos_count = 0
    largest: int | None = None
    with path.open("rb") as handle:
        handle.seek(HEADER_BYTES)
        remaining = info.num_tokens
        while remaining > 0:
            chunk = np.fromfile(handle, dtype=TOKEN_DTYPE, count=min(chunk_tokens, remaining))
            bos_count += int(np.count_nonzero(chunk == BOS_ID))
            largest = max(int(chunk.max()), largest or 0)
            remaining -= chunk.size
    return ShardScan(path=path, num_tokens=info.num_tokens, bos_count=bos_count, max_token=largest)


def find_shards(directory: Path, split: str) -> list[Path]:
    """The ``fineweb_{split}_*.bin`` files of ``directory``, sorted as the loader sorts them."""
    return sorted(directory.glob(f"fineweb_{split}_*.bin"))
