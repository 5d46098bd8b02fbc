"""Errors for bad data input; each message is one line naming the file and what was expected."""

from __future__ import annotations

from golfc.errors import GolfcError


class DataError(GolfcError):
    """A documents file, shard, tokenizer or download that is not what golfc expected."""


class ShardError(DataError):
    """A shard whose header or size does not follow the challenge format."""


class TokenizerMismatchError(DataError):
    """A tokenizer whose vocabulary does not match the requested vocab size."""


class DownloadError(DataError):
    """A file of the published challenge export that could not be fetched."""
