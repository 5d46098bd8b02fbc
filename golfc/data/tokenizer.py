"""Training and loading the SentencePiece BPE tokenizer with the challenge's trainer settings."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from golfc.data.errors import DataError, TokenizerMismatchError
from golfc.data.shards import MAX_TOKEN_ID

# SentencePiece silently skips training sentences longer than this many bytes (its default max_sentence_length).
MAX_SENTENCE_BYTES = 4192
PARAGRAPH_SEPARATOR = "\n\n"
# The thread count is recorded in the model file, so it is a constant (SentencePiece's default) rather than the
# machine's core count: the learned pieces do not depend on it, and a constant keeps the .model byte-identical.
TRAIN_THREADS = 16

# With byte fallback the vocabulary holds 4 special pieces (pad, bos, eos, unk) and 256 byte pieces before any
# learned one, plus one piece per character the corpus needs (character_coverage); tokens are stored as uint16.
SPECIAL_PIECES = 4
BYTE_PIECES = 256
MIN_VOCAB_SIZE = SPECIAL_PIECES + BYTE_PIECES + 1
MAX_VOCAB_SIZE = MAX_TOKEN_ID + 1
REQUIRED_PIECES_PATTERN = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")

# The SentencePiece trainer settings of the challenge's official tokenizers.
TRAINER_SETTINGS: dict[str, object] = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "hard_vocab_limit": False,
}


def training_sentences(text: str, max_bytes: int = MAX_SENTENCE_BYTES) -> list[str]:
    """Cut a long document at blank lines into chunks of at most ``max_bytes``, packing paragraphs greedily.

    Documents that fit are returned whole. A single paragraph longer than ``max_bytes`` stays one (over-long)
    sentence, which SentencePiece skips, as it would have skipped the whole document. This is what reproduces
    the token counts stated in shared/data/README.md.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    chunks: list[str] = []
    current = ""
    for paragraph in text.split(PARAGRAPH_SEPARATOR):
        candidate = paragraph if not current else current + PARAGRAPH_SEPARATOR + paragraph
        if len(candidate.encode("utf-8")) <= max_bytes:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = paragraph
    if current:
        chunks.append(current)
    return chunks


def iter_training_sentences(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        yield from training_sentences(text)


def check_vocab_range(vocab_size: int) -> None:
    """A vocab size the byte-fallback BPE tokenizer and uint16 shards can have (the corpus may need more)."""
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise DataError(
            f"--vocab {vocab_size}: expected {MIN_VOCAB_SIZE}..{MAX_VOCAB_SIZE} ({SPECIAL_PIECES} special + "
            f"{BYTE_PIECES} byte pieces + at least one per character of the corpus; tokens are stored as uint16)"
        )


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> bytes:
    """Train the BPE tokenizer on ``texts``; returns the serialized model (deterministic for the same input)."""
    check_vocab_range(vocab_size)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter_training_sentences(texts),
            model_writer=model,
            vocab_size=vocab_size,
            num_threads=TRAIN_THREADS,
            minloglevel=2,
            **TRAINER_SETTINGS,
        )
    except RuntimeError as exc:
        raise DataError(_training_failure(vocab_size, str(exc).strip())) from None
    return model.getvalue()


def _training_failure(vocab_size: int, message: str) -> str:
    """One line for a SentencePiece training error; a too-small vocab says which sizes would work."""
    too_small = REQUIRED_PIECES_PATTERN.search(message)
    if too_small is not None:
        required = int(too_small.group(2))
        characters = required - SPECIAL_PIECES - BYTE_PIECES
        return (
            f"--vocab {vocab_size}: too small for the {required} pieces this corpus requires ({SPECIAL_PIECES} "
            f"special + {BYTE_PIECES} byte + {characters} characters); expected {required}..{MAX_VOCAB_SIZE}"
        )
    reason = message.splitlines()[-1] if message else "no reason given"
    return f"tokenizer training with vocab {vocab_size} failed: {_short_reason(reason)}"


def _short_reason(message: str) -> str:
    """SentencePiece errors start with a source location in brackets; keep the human part."""
    return message.rsplit("] ", 1)[-1].strip()


def processor_from_bytes(model: bytes) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_proto=model)


def vocab_file_text(processor: spm.SentencePieceProcessor) -> str:
    """The ``.vocab`` companion file as ``spm_train`` writes it: ``piece<TAB>score`` per line, in id order."""
    lines = (f"{processor.id_to_piece(i)}\t{processor.get_score(i):g}\n" for i in range(processor.vocab_size()))
    return "".join(lines)


def load_tokenizer(path: Path) -> spm.SentencePieceProcessor:
    """Load a ``.model`` file; a missing or unreadable file is a one-line DataError."""
    if not path.is_file():
        raise DataError(f"{path}: tokenizer model not found (expected a SentencePiece .model file)")
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as exc:
        raise DataError(f"{path}: not a SentencePiece model ({_short_reason(str(exc).strip())})") from None


def check_vocab_size(path: Path, processor: spm.SentencePieceProcessor, vocab_size: int) -> None:
    """The training script requires ``sp.vocab_size() == VOCAB_SIZE``."""
    actual = processor.vocab_size()
    if actual != vocab_size:
        raise TokenizerMismatchError(f"{path}: tokenizer has vocab size {actual}, expected {vocab_size}")
