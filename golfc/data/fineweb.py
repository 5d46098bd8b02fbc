"""Download the published challenge export (FineWeb, already tokenized) from the Hugging Face Hub.

It mirrors parameter-golf's ``data/cached_challenge_fineweb.py``: in the dataset repository ``repo_id`` (default
``willdepue/fineweb10B_sp1024``, or ``$MATCHED_FINEWEB_REPO_ID``) every path sits under a remote root prefix
(default ``datasets``, or ``$MATCHED_FINEWEB_REMOTE_ROOT_PREFIX``); it fetches

    {prefix}/datasets/fineweb10B_sp{N}/fineweb_val_{i:06d}.bin    for i < val_shards (1 for sp1024)
    {prefix}/datasets/fineweb10B_sp{N}/fineweb_train_{k:06d}.bin  for k < train_shards
    {prefix}/tokenizers/fineweb_{N}_bpe.model

and lays them out under ``out`` without the prefix: ``out/datasets/...`` and ``out/tokenizers/...``, the layout
the training script expects. ``source`` replaces the Hub by a local directory laid out like the repository.
Files already present and valid are not fetched again; a fetched shard is validated before it takes its name.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from golfc.data import layout
from golfc.data.errors import DataError, DownloadError, ShardError
from golfc.data.progress import SilentProgress, StepProgress
from golfc.data.shards import shard_name, validate_shard

DEFAULT_REPO_ID = "willdepue/fineweb10B_sp1024"
DEFAULT_REMOTE_PREFIX = "datasets"
REPO_ID_ENV = "MATCHED_FINEWEB_REPO_ID"
REMOTE_PREFIX_ENV = "MATCHED_FINEWEB_REMOTE_ROOT_PREFIX"
DEFAULT_VAL_SHARDS = 1
VARIANT_PATTERN = re.compile(r"sp(\d+)")

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


def default_repo_id() -> str:
    return os.environ.get(REPO_ID_ENV, DEFAULT_REPO_ID)


def default_remote_prefix() -> str:
    return os.environ.get(REMOTE_PREFIX_ENV, DEFAULT_REMOTE_PREFIX)


def vocab_of_variant(variant: str) -> int:
    """``sp1024`` -> 1024; other variants (``byte260``) are not supported."""
    match = VARIANT_PATTERN.fullmatch(variant)
    if match is None:
        raise DataError(f"variant {variant!r}: expected sp<VOCAB>, e.g. sp1024")
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
        reason = "no such dataset repository (check --repo-id)"
    elif isinstance(exc, EntryNotFoundError):
        reason = "the repository has no such file (check --repo-id / --remote-prefix)"
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
    """Hard-link (or copy) a fetched file into place, through a temporary name."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp_path = destination.with_name(destination.name + ".partial")
    temp_path.unlink(missing_ok=True)
    try:
        os.link(cached, temp_path)
    except OSError:
        shutil.copyfile(cached, temp_path)
    os.replace(temp_path, destination)


def _already_valid(destination: Path) -> bool:
    if not destination.is_file():
        return False
    if destination.suffix != ".bin":
        return True
    try:
        validate_shard(destination)
    except ShardError:
        return False
    return True


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
    if train_shards < 0:
        raise DataError(f"--train-shards {train_shards}: expected 0 or more")
    vocab = vocab_of_variant(variant)
    repo = repo_id or default_repo_id()
    prefix = default_remote_prefix() if remote_prefix is None else remote_prefix
    fetch = local_fetcher(source) if source is not None else hub_fetcher(repo, revision)
    reporter = progress or SilentProgress()
    names = remote_files(vocab, train_shards, val_shards)
    reporter.start(f"fetching {len(names)} files from {source or repo}", len(names))
    files: list[Path] = []
    for name in names:
        destination = out / name
        if not _already_valid(destination):
            fetched = fetch(with_prefix(prefix, name))
            if destination.suffix == ".bin":
                validate_shard(fetched)  # before it takes the final name
            _materialize(fetched, destination)
        files.append(destination)
        reporter.advance(1)
    return FetchedDataset(
        root=out,
        data_path=layout.dataset_dir(out, vocab),
        tokenizer_path=layout.tokenizer_model_path(out, vocab),
        vocab_size=vocab,
        files=tuple(files),
    )
