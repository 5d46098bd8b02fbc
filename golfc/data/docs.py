"""Reading a documents file (JSON lines, optionally xz-compressed) and the fixed validation split."""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from golfc.data.errors import DataError

VALIDATION_MODULUS = 50


@dataclass(frozen=True)
class Document:
    """One document of the corpus: its source, its id within the source, and its text."""

    src: str
    id: str
    text: str

    @property
    def key(self) -> str:
        """The string the validation rule hashes: ``src/id``."""
        return f"{self.src}/{self.id}"


def sha1_of_key(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)


def is_validation(doc: Document) -> bool:
    """The stand-in corpus rule: a document is validation when ``sha1(src/id) % 50 == 0``."""
    return sha1_of_key(doc.key) % VALIDATION_MODULUS == 0


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def _parse_line(path: Path, line_number: int, line: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{line_number}: expected a JSON object per line ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DataError(f"{path}:{line_number}: expected a JSON object with a string field 'text'")
    return Document(src=str(record.get("src", "")), id=str(record.get("id", line_number)), text=record["text"])


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a documents file (.jsonl or .jsonl.xz)")
    if not path.is_file():
        raise DataError(f"{path}: documents file not found (expected a .jsonl or .jsonl.xz file)")


def _decode_line(path: Path, line_number: int, line_offset: int, raw: bytes) -> str:
    """UTF-8 text of one line; a bad byte is reported by line and by its offset in the (decompressed) file."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = "decompressed data" if path.suffix == ".xz" else "file"
        raise DataError(
            f"{path}:{line_number}: expected UTF-8 text ({exc.reason} at byte {line_offset + exc.start} of the {where})"
        ) from None


def iter_documents(path: Path, max_docs: int | None = None) -> Iterator[Document]:
    """Yield the documents of a ``.jsonl`` or ``.jsonl.xz`` file in file order, at most ``max_docs`` of them."""
    _check_is_file(path)
    count = 0
    line_offset = 0
    try:
        with _open_binary(path) as handle:
            for line_number, raw in enumerate(handle, start=1):
                if max_docs is not None and count >= max_docs:
                    return
                line = _decode_line(path, line_number, line_offset, raw)
                line_offset += len(raw)
                if not line.strip():
                    continue
                yield _parse_line(path, line_number, line)
                count += 1
    except (lzma.LZMAError, EOFError) as exc:
        raise DataError(f"{path}: expected an xz-compressed JSON lines file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); expected a readable documents file") from None


def read_documents(path: Path, max_docs: int | None = None) -> list[Document]:
    """All documents of ``path`` (see ``iter_documents``); an empty file is an error."""
    documents = list(iter_documents(path, max_docs))
    if not documents:
        raise DataError(f"{path}: expected at least one document, found none")
    return documents


def split_validation(documents: list[Document]) -> tuple[list[Document], list[Document]]:
    """(validation, train), each in file order."""
    validation = [doc for doc in documents if is_validation(doc)]
    train = [doc for doc in documents if not is_validation(doc)]
    return validation, train
