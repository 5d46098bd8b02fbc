"""Build challenge-format data from a documents file: tokenizer, then validation and train shards.

What it does follows shared/data/README.md: validation = documents with ``sha1(src/id) % 50 == 0``, written first
into ``fineweb_val_*.bin``; every document becomes ``[BOS=1] + sp.encode(text)``; shards hold at most
``shard_tokens`` tokens (100M by default, like the official export) and documents may straddle two shards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import sentencepiece as spm

from golfc.data import layout
from golfc.data.docs import Document, read_documents, split_validation
from golfc.data.errors import DataError, TokenizerMismatchError
from golfc.data.progress import SilentProgress, StepProgress
from golfc.data.shards import (
    BOS_ID,
    DEFAULT_SHARD_TOKENS,
    TOKEN_DTYPE,
    ShardInfo,
    ShardStreamWriter,
    find_shards,
)
from golfc.data.tokenizer import check_vocab_range, processor_from_bytes, train_tokenizer, vocab_file_text
from golfc.outputs import StagedFiles, check_output_root

TokenizerDocs = Literal["all", "train"]
ENCODE_BATCH_DOCS = 256


@dataclass(frozen=True)
class SplitStats:
    """One split of a built dataset."""

    docs: int
    tokens: int
    text_bytes: int
    shards: tuple[Path, ...]


@dataclass(frozen=True)
class DatasetPaths:
    """Where a built dataset lives and what it holds; ``env()`` gives the training script's variables."""

    root: Path
    data_path: Path
    tokenizer_path: Path
    vocab_path: Path
    vocab_size: int
    val: SplitStats
    train: SplitStats

    @property
    def val_tokens(self) -> int:
        return self.val.tokens

    @property
    def train_tokens(self) -> int:
        return self.train.tokens

    def env(self) -> dict[str, str]:
        return layout.training_env(self.data_path, self.tokenizer_path, self.vocab_size)


def build_dataset(
    docs: Path,
    vocab: int,
    out: Path,
    *,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    max_docs: int | None = None,
    tokenizer_docs: TokenizerDocs = "all",
    force: bool = False,
    progress: StepProgress | None = None,
) -> DatasetPaths:
    """Train the tokenizer on ``docs`` and write challenge-format shards under ``out``; deterministic.

    ``tokenizer_docs="all"`` trains the tokenizer on every document (validation included), which is what
    reproduces the token counts of shared/data/README.md; ``"train"`` keeps validation text out of it.
    An ``out`` that already holds shards for this vocab is refused unless ``force``. Every new file is written
    into a staging directory first and replaces the previous one (stale shards are removed) only once all are
    complete; a failure or an interrupt leaves the previous dataset as it was.
    """
    reporter = progress or SilentProgress()
    data_path = layout.dataset_dir(out, vocab)
    _check_arguments(vocab, shard_tokens, max_docs, tokenizer_docs)
    check_output_root(out, layout.ROOT_OPTION)
    existing = find_shards(data_path, "train") + find_shards(data_path, "val")
    if existing and not force:
        raise DataError(f"{data_path}: already holds {len(existing)} shards; expected an empty directory (or --force)")

    reporter.start("reading documents", None)
    documents = read_documents(docs, max_docs)
    validation, train = _split_nonempty(docs, documents)

    reporter.start(f"training tokenizer (vocab {vocab})", None)
    texts = [doc.text for doc in (documents if tokenizer_docs == "all" else train)]
    model = train_tokenizer(texts, vocab)
    processor = _processor_of_size(model, vocab, docs)
    tokenizer_path = layout.tokenizer_model_path(out, vocab)
    vocab_path = layout.tokenizer_vocab_path(out, vocab)
    val_stats, train_stats = _write_all_or_nothing(
        _NewDataset(out, data_path, tokenizer_path, vocab_path, model, processor),
        (validation, train),
        existing,
        shard_tokens,
        reporter,
    )
    return DatasetPaths(
        root=out,
        data_path=data_path,
        tokenizer_path=tokenizer_path,
        vocab_path=vocab_path,
        vocab_size=vocab,
        val=val_stats,
        train=train_stats,
    )


@dataclass(frozen=True)
class _NewDataset:
    """Where a build's files go, and the trained tokenizer they are made with."""

    out: Path
    data_path: Path
    tokenizer_path: Path
    vocab_path: Path
    model: bytes
    processor: spm.SentencePieceProcessor


def _write_all_or_nothing(
    new: _NewDataset,
    splits: tuple[list[Document], list[Document]],
    existing: list[Path],
    shard_tokens: int,
    reporter: StepProgress,
) -> tuple[SplitStats, SplitStats]:
    """Write tokenizer and shards into staging directories, then replace the previous files and stale shards."""
    staging = StagedFiles()
    try:
        staging.path_for(new.tokenizer_path).write_bytes(new.model)
        staging.path_for(new.vocab_path).write_bytes(vocab_file_text(new.processor).encode("utf-8"))
        staged_data = staging.directory_for(new.data_path)
        val_stats = _export_split(new.processor, splits[0], staged_data, "val", shard_tokens, reporter)
        train_stats = _export_split(new.processor, splits[1], staged_data, "train", shard_tokens, reporter)
        val_stats, train_stats = _moved_to(val_stats, new.data_path), _moved_to(train_stats, new.data_path)
        new_shards = set(val_stats.shards + train_stats.shards)
        staging.commit(remove=[path for path in existing if path not in new_shards])
    except OSError as exc:
        where = staging.target_of(Path(exc.filename)) if exc.filename else new.out
        raise DataError(
            f"{where}: cannot write ({exc.strerror}); expected a writable directory under {new.out} "
            "(the previous files are unchanged)"
        ) from None
    finally:
        staging.discard()
    return val_stats, train_stats


def _check_arguments(vocab: int, shard_tokens: int, max_docs: int | None, tokenizer_docs: str) -> None:
    if shard_tokens < 1:
        raise DataError(f"--shard-tokens {shard_tokens}: expected a positive number of tokens per shard")
    if max_docs is not None and max_docs < 1:
        raise DataError(f"--max-docs {max_docs}: expected a positive number of documents")
    if tokenizer_docs not in ("all", "train"):
        raise DataError(f"--tokenizer-docs {tokenizer_docs}: expected 'all' or 'train'")
    check_vocab_range(vocab)


def _split_nonempty(docs: Path, documents: list[Document]) -> tuple[list[Document], list[Document]]:
    validation, train = split_validation(documents)
    if not validation:
        raise DataError(
            f"{docs}: none of the {len(documents)} documents is in the validation split "
            "(sha1(src/id) % 50 == 0); expected at least one (use more documents)"
        )
    if not train:
        raise DataError(f"{docs}: all {len(documents)} documents are validation documents; expected some train ones")
    return validation, train


def _processor_of_size(model: bytes, vocab: int, docs: Path) -> spm.SentencePieceProcessor:
    """The trained tokenizer, which must have exactly ``vocab`` pieces (a small corpus can yield fewer)."""
    processor = processor_from_bytes(model)
    if processor.vocab_size() != vocab:
        raise TokenizerMismatchError(
            f"{docs}: the corpus yields a tokenizer of {processor.vocab_size()} pieces, expected {vocab} "
            "(use a smaller --vocab or more documents)"
        )
    return processor


def _moved_to(stats: SplitStats, directory: Path) -> SplitStats:
    """``stats`` with its shards at their final place in ``directory`` (they were written in a staging one)."""
    return replace(stats, shards=tuple(directory / path.name for path in stats.shards))


def encode_documents(processor: spm.SentencePieceProcessor, texts: Sequence[str]) -> np.ndarray:
    """``[BOS] + sp.encode(text)`` for each text, concatenated, as uint16."""
    encoded = processor.encode(list(texts), num_threads=os.cpu_count() or 1)
    flat: list[int] = []
    for ids in encoded:
        flat.append(BOS_ID)
        flat.extend(ids)
    return np.asarray(flat, dtype=TOKEN_DTYPE)


def _export_split(
    processor: spm.SentencePieceProcessor,
    documents: list[Document],
    directory: Path,
    split: str,
    shard_tokens: int,
    reporter: StepProgress,
) -> SplitStats:
    reporter.start(f"encoding {split} documents", len(documents))
    writer = ShardStreamWriter(directory, split, shard_tokens)
    text_bytes = 0
    try:
        for start in range(0, len(documents), ENCODE_BATCH_DOCS):
            batch = [doc.text for doc in documents[start : start + ENCODE_BATCH_DOCS]]
            writer.write(encode_documents(processor, batch))
            text_bytes += sum(len(text.encode("utf-8")) for text in batch)
            reporter.advance(len(batch))
    except BaseException:
        writer.abort()
        raise
    shards: list[ShardInfo] = writer.close()
    return SplitStats(
        docs=len(documents),
        tokens=sum(shard.num_tokens for shard in shards),
        text_bytes=text_bytes,
        shards=tuple(shard.path for shard in shards),
    )
