"""``golfc data``: build challenge-format data from documents, fetch the published export, check a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from golfc.console import console, err_console, print_error
from golfc.data import layout
from golfc.data.build import DatasetPaths, TokenizerDocs, build_dataset
from golfc.data.check import SPLITS, CheckReport, check_dataset
from golfc.data.fineweb import (
    DEFAULT_REMOTE_PREFIX,
    DEFAULT_REPO_ID,
    DEFAULT_VAL_SHARDS,
    REMOTE_PREFIX_ENV,
    REPO_ID_ENV,
    VARIANT_REPO_IDS,
    fetch_fineweb,
)
from golfc.data.progress import rich_progress
from golfc.data.shards import DEFAULT_SHARD_TOKENS, find_shards
from golfc.errors import GolfcError

data_app = typer.Typer(
    help="Challenge-format data: build shards from documents, fetch the published FineWeb export, check shards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ERROR_EXIT_CODE = 2  # what golfc.cli.main uses for a GolfcError


class TokenizerDocsChoice(str, Enum):
    all = "all"
    train = "train"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A GolfcError becomes one line on stderr and exit code 2, also when data_app runs on its own."""
    try:
        yield
    except GolfcError as exc:
        print_error(exc)
        raise typer.Exit(ERROR_EXIT_CODE) from None


def print_training_env(env: dict[str, str]) -> None:
    """The variables to hand the training script, one ``NAME=value`` per line (easy to copy or parse)."""
    for name, value in env.items():
        typer.echo(f"{name}={value}")


def _build_table(paths: DatasetPaths) -> Table:
    table = Table(title=f"dataset {paths.data_path}")
    for column in ("split", "docs", "files", "tokens", "text bytes", "tokens/byte"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, stats in (("val", paths.val), ("train", paths.train)):
        ratio = stats.tokens / stats.text_bytes if stats.text_bytes else 0.0
        row = (split, f"{stats.docs:,}", str(len(stats.shards)), f"{stats.tokens:,}", f"{stats.text_bytes:,}")
        table.add_row(*row, f"{ratio:.3f}")
    return table


@data_app.command("build")
def build(
    docs: Annotated[Path, typer.Option("--docs", help="Documents: JSON lines {src, id, text}, optionally .xz.")],
    vocab: Annotated[int, typer.Option("--vocab", help="Tokenizer vocabulary size (VOCAB_SIZE).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Data root; gets datasets/ and tokenizers/.")] = Path("data"),
    shard_tokens: Annotated[
        int, typer.Option("--shard-tokens", help="Tokens per shard (the official export uses 100M).")
    ] = DEFAULT_SHARD_TOKENS,
    max_docs: Annotated[
        int | None, typer.Option("--max-docs", help="Use only the first K documents of the file.")
    ] = None,
    tokenizer_docs: Annotated[
        TokenizerDocsChoice,
        typer.Option("--tokenizer-docs", help="Train the tokenizer on 'all' documents (reference) or 'train' only."),
    ] = TokenizerDocsChoice.all,
    force: Annotated[bool, typer.Option("--force", help="Replace shards already in the output directory.")] = False,
) -> None:
    """Train the SentencePiece tokenizer on DOCS and write challenge-format val/train shards."""
    with one_line_errors():
        with rich_progress(err_console) as progress:
            paths = build_dataset(
                docs,
                vocab,
                out,
                shard_tokens=shard_tokens,
                max_docs=max_docs,
                tokenizer_docs=cast(TokenizerDocs, tokenizer_docs.value),
                force=force,
                progress=progress,
            )
        console.print(_build_table(paths))
        print_training_env(paths.env())


@data_app.command("fineweb")
def fineweb(
    train_shards: Annotated[int, typer.Option("--train-shards", help="How many 100M-token train shards to fetch.")],
    variant: Annotated[str, typer.Option("--variant", help="Export variant: sp<VOCAB>.")] = "sp1024",
    out: Annotated[Path, typer.Option("-o", "--out", help="Data root; gets datasets/ and tokenizers/.")] = Path("data"),
    repo_id: Annotated[
        str | None,
        typer.Option(
            "--repo",
            "--repo-id",
            help="Hugging Face dataset repository of the export.",
            show_default=f"${REPO_ID_ENV}, else {DEFAULT_REPO_ID} ({VARIANT_REPO_IDS[8192]} for sp8192)",
        ),
    ] = None,
    remote_prefix: Annotated[
        str | None,
        typer.Option(
            "--remote-prefix",
            help="Folder the repository keeps datasets/ and tokenizers/ under (empty: none).",
            show_default=f"${REMOTE_PREFIX_ENV} or {DEFAULT_REMOTE_PREFIX}",
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Repo revision.")] = None,
    val_shards: Annotated[int, typer.Option("--val-shards", help="Validation shards in the export.")] = (
        DEFAULT_VAL_SHARDS
    ),
    source: Annotated[
        Path | None,
        typer.Option("--source", help="A local directory laid out like the Hub repo, instead of the Hub."),
    ] = None,
) -> None:
    """Download the published challenge export (val shards, N train shards, tokenizer) with huggingface_hub."""
    with one_line_errors():
        with rich_progress(err_console) as progress:
            fetched = fetch_fineweb(
                out,
                variant=variant,
                train_shards=train_shards,
                val_shards=val_shards,
                repo_id=repo_id,
                remote_prefix=remote_prefix,
                revision=revision,
                source=source,
                progress=progress,
            )
        console.print(f"{len(fetched.files)} files under {fetched.root}", highlight=False, soft_wrap=True)
        print_training_env(fetched.env())


def _resolve_data_path(directory: Path, vocab: int) -> Path:
    """Accept the dataset directory itself or a data root holding ``datasets/fineweb10B_sp{N}``."""
    nested = layout.dataset_dir(directory, vocab)
    has_shards = any(find_shards(directory, split) for split in SPLITS)
    return nested if not has_shards and nested.is_dir() else directory


def _check_table(report: CheckReport) -> Table:
    table = Table(title=f"{report.data_path}  (tokenizer {report.tokenizer_path.name}, vocab {report.vocab_size})")
    for column in ("file", "tokens", "docs"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for shard in report.shards:
        table.add_row(shard.path.name, f"{shard.tokens:,}", f"{shard.docs:,}")
    table.add_section()
    for split in SPLITS:
        summary = report.split(split)
        table.add_row(
            f"[bold]{split} ({summary.files} files)[/]", f"[bold]{summary.tokens:,}[/]", f"[bold]{summary.docs:,}[/]"
        )
    return table


@data_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="DATA_PATH (or a data root holding datasets/fineweb10B_spN).")],
    tokenizer: Annotated[Path, typer.Option("--tokenizer", help="The SentencePiece .model (TOKENIZER_PATH).")],
    vocab: Annotated[int, typer.Option("--vocab", help="Expected vocabulary size (VOCAB_SIZE).")],
) -> None:
    """Validate every shard (magic, version, exact size, token ids) and that the tokenizer has VOCAB pieces."""
    with one_line_errors():
        report = check_dataset(_resolve_data_path(directory, vocab), tokenizer, vocab)
        console.print(_check_table(report))
        console.print(f"[green]ok[/]: {len(report.shards)} shards valid", highlight=False)
