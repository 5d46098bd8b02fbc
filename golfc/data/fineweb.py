"""Download the published challenge export (FineWeb, already tokenized) from the Hugging Face Hub.

It mirrors parameter-golf's ``data/cached_challenge_fineweb.py``: in the dataset repository ``repo_id`` (default
``willdepueoai/parameter-golf``, the repository the challenge's ``data/README.md`` names; ``kevclark/parameter-golf``
for sp8192, which the official export lacks and the later records fetch from there; or ``$MATCHED_FINEWEB_REPO_ID``;
any other with ``--repo``) every path sits under a remote root prefix
(default ``datasets``, or ``$MATCHED_FINEWEB_REMOTE_ROOT_PREFIX``); it fetches

    {prefix}/datasets/fineweb10B_sp{N}/fineweb_val_{i:06d}.bin    for i < val_shards (1 for sp1024)
    {prefix}/datasets/fineweb10B_sp{N}/fineweb_train_{k:06d}.bin  for k < train_shards
    {prefix}/tokenizers/fineweb_{N}_bpe.model

and lays them out under ``out`` without the prefix: ``out/datasets/...`` and ``out/tokenizers/...``, the layout
the training script expects. ``source`` replaces the Hub by a local directory laid out like the repository.
Files already present and valid (shards: format; tokenizer: loads with N pieces) are not fetched again; a
fetched file is validated the same way before it takes its name.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from golfc.data import layout
from golfc.data.errors import DataError, DownloadError
from golfc.data.progress import SilentProgress, StepProgress
from golfc.data.shards import shard_name, validate_shard
from golfc.data.tokenizer import check_vocab_size, load_tokenizer
from golfc.outputs import check_output_root

DEFAULT_REPO_ID = "willdepueoai/parameter-golf"  # the challenge's data/README.md and cached_challenge_fineweb.py
VARIANT_REPO_IDS = {8192: "kevclark/parameter-golf"}  # sp8192: not in the official export; later records use this
DEFAULT_REMOTE_PREFIX = "datasets"
REPO_ID_ENV = "MATCHED_FINEWEB_REPO_ID"
REMOTE_PREFIX_ENV = "MATCHED_FINEWEB_REMOTE_ROOT_PREFIX"
DEFAULT_VAL_SHARDS = 1
VARIANT_PATTERN = re.compile(r"sp([1-9]\d*)")  # a positive vocab, no leading zeros

Fetcher = Callable[[str], Path]


@dataclass(frozen=True)
class FetchedDataset:
    """Where the downloaded export lives; ``env()`` gives the training script's variables."""

    root: Path
    data_path: Path
    tokenizer_path: Path
    vocab_size: int
    files: tuple[Path, ...]

    def env(self) -> dict[str, str]:
        return layout.training_env(self.data_path, self.tokenizer_path, self.vocab_size)


def default_repo_id(vocab: int | None = None) -> str:
    """``$MATCHED_FINEWEB_REPO_ID``, else the repository that publishes the ``sp{vocab}`` export."""
    return os.environ.get(REPO_ID_ENV) or VARIANT_REPO_IDS.get(vocab or 0, DEFAULT_REPO_ID)


def default_remote_prefix() -> str:
    return os.environ.get(REMOTE_PREFIX_ENV, DEFAULT_REMOTE_PREFIX)


def vocab_of_variant(variant: str) -> int:
    """``sp1024`` -> 1024; other variants (``byte260``) are not supported."""
    match = VARIANT_PATTERN.fullmatch(variant)
    if match is None:
        raise DataError(
            f"variant {variant!r}: expected sp<VOCAB> with a positive VOCAB written without leading zeros, e.g. sp1024"
        )
    return int(match.group(1))


def remote_files(vocab: int, train_shards: int, val_shards: int = DEFAULT_VAL_SHARDS) -> list[str]:
    """Repository paths (without the remote prefix) of the export's files, validation first."""
    dataset = f"{layout.DATASETS_DIR}/{layout.dataset_name(vocab)}"
    names = [f"{dataset}/{shard_name('val', i)}" for i in range(val_shards)]
    names += [f"{dataset}/{shard_name('train', k)}" for k in range(train_shards)]
    names.append(f"{layout.TOKENIZERS_DIR}/{layout.tokenizer_name(vocab)}.model")
    return names


def with_prefix(prefix: str, relative: str) -> str:
    return str(PurePosixPath(prefix) / relative) if prefix.strip("/") else relative


def hub_fetcher(repo_id: str, revision: str | None = None) -> Fetcher:
    """Fetch one repository path through huggingface_hub's cache; errors become one-line DownloadErrors."""

    def fetch(remote_path: str) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import logging as hub_logging

        path = PurePosixPath(remote_path)
        subfolder = str(path.parent) if str(path.parent) != "." else None
        hub_logging.set_verbosity_error()  # its retry warnings would bury our one-line error
        try:
            local = hf_hub_download(repo_id, path.name, subfolder=subfolder, repo_type="dataset", revision=revision)
        except Exception as exc:
            raise DownloadError(_download_failure(repo_id, remote_path, exc)) from None
        return Path(local).resolve(strict=True)

    return fetch


def _download_failure(repo_id: str, remote_path: str, exc: Exception) -> str:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError):
        reason = "the Hub cannot be reached and no cached copy exists (offline? try --source DIR)"
    elif isinstance(exc, RepositoryNotFoundError):
        reason = "no such dataset repository (check --repo)"
    elif isinstance(exc, EntryNotFoundError):
        reason = "the repository has no such file (check --repo / --remote-prefix)"
    else:
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return (
        f"cannot download {remote_path} from dataset {repo_id}: {reason} "
        "(expected this file of the published challenge export)"
    )


def local_fetcher(source: Path) -> Fetcher:
    """Fetch from a local directory laid out like the Hub repository."""
    if not source.is_dir():
        raise DataError(f"{source}: source directory not found (expected a copy of the Hub repository layout)")

    def fetch(remote_path: str) -> Path:
        local = source / remote_path
        if not local.is_file():
            raise DownloadError(f"{local}: missing in --source {source}; expected the export file {remote_path}")
        return local

    return fetch


def _materialize(cached: Path, destination: Path) -> None:
    """Hard-link (or copy) a fetched file into place, through a temporary name that is removed on failure."""
    temp_path = destination.with_name(destination.name + ".partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp_path.unlink(missing_ok=True)
        try:
            os.link(cached, temp_path)
        except OSError:
            shutil.copyfile(cached, temp_path)
        os.replace(temp_path, destination)
    except OSError as exc:
        if temp_path.is_file():
            temp_path.unlink()
        raise DataError(f"{destination}: cannot write ({exc.strerror}); expected a writable file path there") from None


def validate_export_file(path: Path, vocab: int) -> None:
    """A shard must follow the challenge format; the tokenizer must load and have exactly ``vocab`` pieces."""
    if path.name.endswith(".bin"):
        validate_shard(path)
    elif path.name.endswith(".model"):
        check_vocab_size(path, load_tokenizer(path), vocab)


def _validate_fetched(fetched: Path, name: str, vocab: int) -> None:
    """Validate a fetched file before it takes its final name; the error names the file and the export path."""
    try:
        validate_export_file(fetched, vocab)
    except DataError as exc:
        message = str(exc) if str(fetched).endswith(name) else f"{exc} (fetched as {name})"
        raise type(exc)(message) from None


def _already_valid(destination: Path, vocab: int) -> bool:
    if not destination.is_file():
        return False
    try:
        validate_export_file(destination, vocab)
    except DataError:
        return False
    return True


def _check_counts(train_shards: int, val_shards: int) -> None:
    if train_shards < 0:
        raise DataError(f"--train-shards {train_shards}: expected 0 or more")
    if val_shards < 1:
        raise DataError(f"--val-shards {val_shards}: expected 1 or more (the export has at least one)")


def _fetch_one(fetch: Fetcher, prefix: str, name: str, out: Path, vocab: int) -> Path:
    """``out/name``: kept when already valid, otherwise fetched, validated and put in place."""
    destination = out / name
    try:
        if not _already_valid(destination, vocab):
            fetched = fetch(with_prefix(prefix, name))
            _validate_fetched(fetched, name, vocab)
            _materialize(fetched, destination)
    except OSError as exc:
        where = exc.filename or destination
        raise DataError(f"{where}: cannot read or write ({exc.strerror}); expected {name} of the export") from None
    return destination


def fetch_fineweb(
    out: Path,
    *,
    variant: str = "sp1024",
    train_shards: int = 1,
    val_shards: int = DEFAULT_VAL_SHARDS,
    repo_id: str | None = None,
    remote_prefix: str | None = None,
    revision: str | None = None,
    source: Path | None = None,
    progress: StepProgress | None = None,
) -> FetchedDataset:
    """Fetch the export's val shards, the first ``train_shards`` train shards and the tokenizer into ``out``."""
    _check_counts(train_shards, val_shards)
    vocab = vocab_of_variant(variant)
    check_output_root(out, layout.ROOT_OPTION)
    repo = repo_id or default_repo_id(vocab)
    prefix = default_remote_prefix() if remote_prefix is None else remote_prefix
    fetch = local_fetcher(source) if source is not None else hub_fetcher(repo, revision)
    reporter = progress or SilentProgress()
    names = remote_files(vocab, train_shards, val_shards)
    reporter.start(f"fetching {len(names)} files from {source or repo}", len(names))
    files: list[Path] = []
    for name in names:
        files.append(_fetch_one(fetch, prefix, name, out, vocab))
        reporter.advance(1)
    return FetchedDataset(
        root=out,
        data_path=layout.dataset_dir(out, vocab),
        tokenizer_path=layout.tokenizer_model_path(out, vocab),
        vocab_size=vocab,
        files=tuple(files),
    )
