"""Validate a dataset directory: every shard's header and size, and the tokenizer's vocab size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from golfc.data.errors import DataError
from golfc.data.shards import find_shards, scan_shard
from golfc.data.tokenizer import check_vocab_size, load_tokenizer

SPLITS = ("val", "train")


@dataclass(frozen=True)
class ShardSummary:
    """One shard of a checked dataset; ``docs`` is its BOS count (document starts)."""

    path: Path
    split: str
    tokens: int
    docs: int


@dataclass(frozen=True)
class SplitSummary:
    split: str
    files: int
    tokens: int
    docs: int


@dataclass(frozen=True)
class CheckReport:
    data_path: Path
    tokenizer_path: Path
    vocab_size: int
    shards: tuple[ShardSummary, ...]

    def split(self, split: str) -> SplitSummary:
        shards = [shard for shard in self.shards if shard.split == split]
        return SplitSummary(
            split=split,
            files=len(shards),
            tokens=sum(shard.tokens for shard in shards),
            docs=sum(shard.docs for shard in shards),
        )


def check_dataset(data_path: Path, tokenizer_path: Path, vocab_size: int) -> CheckReport:
    """Raise a one-line DataError at the first problem; otherwise summarise every shard."""
    processor = load_tokenizer(tokenizer_path)
    check_vocab_size(tokenizer_path, processor, vocab_size)
    if not data_path.is_dir():
        raise DataError(f"{data_path}: dataset directory not found (expected fineweb_{{train,val}}_*.bin shards)")
    summaries: list[ShardSummary] = []
    for split in SPLITS:
        paths = find_shards(data_path, split)
        if not paths:
            raise DataError(f"{data_path}: no fineweb_{split}_*.bin shards; expected at least one")
        split_summaries = [_summarise(path, split, vocab_size) for path in paths]
        if sum(summary.tokens for summary in split_summaries) == 0:
            raise DataError(f"{data_path}: every fineweb_{split}_*.bin shard is empty; expected tokens")
        summaries.extend(split_summaries)
    return CheckReport(data_path, tokenizer_path, vocab_size, tuple(summaries))


def _summarise(path: Path, split: str, vocab_size: int) -> ShardSummary:
    scan = scan_shard(path)
    if scan.max_token is not None and scan.max_token >= vocab_size:
        raise DataError(f"{path}: holds token id {scan.max_token}, expected ids below the vocab size {vocab_size}")
    return ShardSummary(path=path, split=split, tokens=scan.num_tokens, docs=scan.bos_count)
