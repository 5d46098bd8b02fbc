"""Make ``golfc/data/corpus/tiny-docs.jsonl.xz``, the public-domain slice of the stand-in corpus shipped with golfc.

Usage: ``python -m golfc.data.make_tiny_corpus SHARED/data/standin-docs.jsonl.xz [-o OUT]``.

Selection (deterministic, no randomness): from the public-domain sources austen, kjv and shakespeare, take every
document the validation rule puts in validation (``sha1(src/id) % 50 == 0``), so the slice has a real validation
split, plus the first ``TRAIN_DOCS_PER_SOURCE[src]`` train documents of each source in ``sha1(src/id)`` order.
The output keeps the source's line format and order (sorted by ``sha1(src/id)``), compressed with xz preset 9.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
from pathlib import Path

from golfc.data.docs import Document, is_validation, iter_documents, sha1_of_key

TINY_CORPUS_PATH = Path(__file__).resolve().parent / "corpus" / "tiny-docs.jsonl.xz"
PUBLIC_DOMAIN_SOURCES = ("austen", "kjv", "shakespeare")
TRAIN_DOCS_PER_SOURCE = {"austen": 60, "kjv": 150, "shakespeare": 30}
XZ_PRESET = 9


def select_documents(documents: list[Document]) -> list[Document]:
    """All validation-rule documents of the public-domain sources plus a fixed number of train ones per source."""
    chosen: list[Document] = []
    taken = dict.fromkeys(PUBLIC_DOMAIN_SOURCES, 0)
    for doc in sorted(documents, key=lambda d: sha1_of_key(d.key)):
        if doc.src not in taken:
            continue
        if is_validation(doc):
            chosen.append(doc)
        elif taken[doc.src] < TRAIN_DOCS_PER_SOURCE[doc.src]:
            chosen.append(doc)
            taken[doc.src] += 1
    return chosen


def to_jsonl(documents: list[Document]) -> bytes:
    lines = (json.dumps({"src": d.src, "id": d.id, "text": d.text}, ensure_ascii=False) + "\n" for d in documents)
    return "".join(lines).encode("utf-8")


def make_tiny_corpus(source: Path, out: Path = TINY_CORPUS_PATH) -> list[Document]:
    """Write the slice of ``source`` to ``out`` (xz); returns the chosen documents."""
    chosen = select_documents(list(iter_documents(source)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(to_jsonl(chosen), preset=XZ_PRESET))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the stand-in corpus, standin-docs.jsonl.xz")
    parser.add_argument("-o", "--out", type=Path, default=TINY_CORPUS_PATH)
    args = parser.parse_args()
    chosen = make_tiny_corpus(args.source, args.out)
    raw = to_jsonl(chosen)
    validation = sum(is_validation(doc) for doc in chosen)
    per_source = {src: sum(doc.src == src for doc in chosen) for src in PUBLIC_DOMAIN_SOURCES}
    print(f"{args.out}: {len(chosen)} documents ({validation} validation), {per_source}")
    print(f"text {len(raw):,} bytes, compressed {args.out.stat().st_size:,} bytes")
    print(f"sha256 (decompressed) {hashlib.sha256(raw).hexdigest()}")


if __name__ == "__main__":
    main()
