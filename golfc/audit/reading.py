"""Read a submission's files defensively: regular files only, and never more than a sane number of bytes.

A folder can hold a symlink to ``/dev/zero``, a FIFO or a directory where a file is expected; reading one
would hang or never end. Such paths raise ``NotARegularFile``; files over the limit raise ``FileTooLarge``.
Both are ``OSError``s, so callers that already report unreadable files report these the same way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_READ_BYTES = 64 * 1024 * 1024


class NotARegularFile(OSError):
    """The path is a directory, device, FIFO or socket (possibly behind a symlink)."""


class FileTooLarge(OSError):
    """The file is larger than the audit reads."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path.name} is {size:,} bytes, over the {limit // (1024 * 1024)} MiB the audit reads")
        self.size = size


def read_limited(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    info = _regular_file_info(path)
    if info.st_size > limit:
        raise FileTooLarge(path, info.st_size, limit)
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path, len(data), limit)
    return data


def read_text_limited(path: Path, limit: int = MAX_READ_BYTES) -> str:
    """``read_limited`` decoded as text: UTF-8 (a BOM is dropped), or UTF-16 when the file starts with a UTF-16
    BOM (PowerShell's ``>`` writes that); undecodable bytes replaced."""
    return decode_text(read_limited(path, limit))


def read_head(path: Path, limit: int = MAX_READ_BYTES) -> str:
    """The first ``limit`` bytes of a regular file as text (for sniffing what a file is)."""
    _regular_file_info(path)
    with path.open("rb") as handle:
        return decode_text(handle.read(limit))


def decode_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _regular_file_info(path: Path) -> os.stat_result:
    """``path.stat()`` of a regular file (through symlinks); anything else raises NotARegularFile."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise NotARegularFile(f"{path.name} is not a regular file ({_kind(info.st_mode)})")
    return info


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"
