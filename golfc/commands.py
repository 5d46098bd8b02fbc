"""The build-side CLI commands: build, plugins, size, demo."""

from __future__ import annotations

import base64
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.table import Table

from golfc.build import OUT_OPTION, SIZE_LIMIT, BuildResult, build_submission
from golfc.console import console, print_error
from golfc.emit.wrap import FILTERS
from golfc.engine import describe_plugin, resolve
from golfc.errors import GolfcError, RecipeError
from golfc.hparams import parse_set_options
from golfc.outputs import check_output_root
from golfc.plugins import CatalogEntry, discover, one_line
from golfc.recipe import Recipe, unique_in_order

DEMO_NPROC = (1, 2, 4, 8)  # WORLD_SIZE must divide 8 (grad_accum_steps = 8 // WORLD_SIZE)
PLUGINS_HELP = "Plugins to add to the baseline: comma-separated, repeatable (accumulates in order)."

TINY_DEMO_ENV = {
    "DEVICE": "cpu",
    "NUM_LAYERS": "2",
    "MODEL_DIM": "64",
    "NUM_HEADS": "4",
    "NUM_KV_HEADS": "2",
    "TRAIN_SEQ_LEN": "128",
    "TRAIN_BATCH_TOKENS": "8192",
    "VAL_BATCH_SIZE": "65536",
    "WARMUP_STEPS": "2",
    "VAL_LOSS_EVERY": "0",
    "TRAIN_LOG_EVERY": "10",
    "MAX_WALLCLOCK_SECONDS": "0",
}


def _split_plugins(options: list[str]) -> tuple[str, ...]:
    """Every ``--plugins`` option, split on commas, in order, each name once. An empty name (``--plugins ""``,
    ``--plugins ,``, ``a,,b``) is refused: building the baseline instead would hide the mistake."""
    for option in options:
        if any(not name.strip() for name in option.split(",")):
            raise RecipeError(f"--plugins {option!r}: empty plugin name; expected comma-separated plugin names")
    return unique_in_order(name.strip() for option in options for name in option.split(","))


def _lzma_b85_bytes(text: str) -> int:
    return len(base64.b85encode(lzma.compress(text.encode(), format=lzma.FORMAT_RAW, filters=FILTERS)))


SIZE_TABLE_ORIGIN_MIN_WIDTH = 110  # terminal columns below which the size table leaves out the origin column


def size_table(result: BuildResult, width: int) -> Table:
    """Bytes per section: readable, shipped (minified when asked) and lzma+b85 of the section alone.

    One line per section; the origin column (where the section's code lives) is left out when the
    terminal is too narrow for it, rather than squeezing the names or the numbers. Narrower still, the
    section names fold onto a second line; the numbers are never cut.
    """
    table = Table(title=f"golfc build -> {result.out_dir}", show_footer=True)
    table.add_column("section", footer="total (.src.py | .py)", overflow="fold")
    with_origin = width >= SIZE_TABLE_ORIGIN_MIN_WIDTH
    if with_origin:
        table.add_column("origin", no_wrap=True, overflow="ellipsis")
    table.add_column("readable", justify="right", no_wrap=True, footer=f"{len(result.readable.encode()):,}")
    table.add_column("shipped", justify="right", no_wrap=True)
    table.add_column("lzma+b85", justify="right", no_wrap=True, footer=f"{result.wrapped_bytes:,}")
    for readable, shipped in zip(result.readable_sections, result.sections):
        sizes = (
            f"{len(readable.source.encode()):,}",
            f"{len(shipped.source.encode()):,}",
            f"{_lzma_b85_bytes(shipped.source):,}",
        )
        table.add_row(readable.filename, *((readable.origin,) if with_origin else ()), *sizes)
    return table


def build(
    plugins: list[str] = typer.Option([], "--plugins", "-p", help=PLUGINS_HELP),
    set_: list[str] = typer.Option([], "--set", help="Pin a hyperparameter default: NAME=VALUE (repeatable)."),
    out: Path = typer.Option(Path("golfc-build"), "--out", "-o", help="Output folder."),
    minify: bool = typer.Option(False, "--minify/--no-minify", help="Minify sections (AST-guarded)."),
    plugins_dir: Path | None = typer.Option(None, "--plugins-dir", help="Folder of loose plugin .py files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the output paths."),
) -> None:
    """Compose plugins into a self-extracting train_gpt.py, a readable train_gpt.src.py and golfc.lock."""
    result = build_submission(_split_plugins(plugins), parse_set_options(set_), out, minify, plugins_dir)
    if not quiet:
        console.print(size_table(result, console.width))
        share = 100 * result.wrapped_bytes / SIZE_LIMIT
        console.print(
            f"code bytes {result.wrapped_bytes:,} = {share:.3f}% of {SIZE_LIMIT:,}; "
            f"active: {', '.join(result.resolution.active)}"
        )
    for name in ("train_gpt.py", "train_gpt.src.py", "golfc.lock"):
        typer.echo(str(out / name))  # plain lines: scripts may read them


def plugins(
    json_: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    plugins_dir: Path | None = typer.Option(None, "--plugins-dir", help="Folder of loose plugin .py files."),
) -> None:
    """List every plugin golfc can find: built-ins, entry points and --plugins-dir files.

    A plugin that cannot be loaded (or whose hooks a build would reject) is left out of the list and reported
    as one `error:` line on stderr; the exit code is then 2.
    """
    rows, problems = describe_catalog(discover(plugins_dir))
    if json_:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:
        console.print(plugins_table(rows, console.width))
    for problem in problems:
        print_error(problem)
    if problems:
        raise typer.Exit(2)


PLUGINS_TABLE_ORIGIN_MIN_WIDTH = 100  # terminal columns below which `golfc plugins` leaves out the origin column


def plugins_table(rows: list[dict], width: int) -> Table:
    """One row per plugin. No name is cut: plugin and slot names keep their line, and the hyperparameter names
    go under the summary, which wraps between words. The origin column is left out on a narrow terminal
    (``--json`` has it)."""
    table = Table(title="golfc plugins")
    table.add_column("name", no_wrap=True)
    table.add_column("slots", no_wrap=True)
    table.add_column("summary and hyperparameters", overflow="fold")
    with_origin = width >= PLUGINS_TABLE_ORIGIN_MIN_WIDTH
    if with_origin:
        table.add_column("origin", overflow="fold")
    for row in rows:
        name = f"{row['name']}\n[dim](default)[/]" if row["default"] else row["name"]
        about = row["summary"]
        if row["hparams"]:
            about += "\n[dim]" + ", ".join(h["name"] for h in row["hparams"]) + "[/]"
        table.add_row(name, "\n".join(row["slots"]), about, *((row["origin"],) if with_origin else ()))
    return table


def describe_catalog(catalog: dict[str, CatalogEntry]) -> tuple[list[dict], list[str]]:
    """(a row per plugin that loads, one message per plugin that does not), so one broken plugin (an entry
    point of an unrelated package, say) does not hide the others."""
    rows, problems = [], []
    for name, entry in catalog.items():
        try:
            rows.append(describe_plugin(name, entry))
        except GolfcError as exc:
            problems.append(one_line(str(exc)))
    return rows, problems


def measure_size(folder: Path) -> dict:
    """Code bytes of the shipped train_gpt.py plus the largest model artifact found beside it."""
    script = folder / "train_gpt.py"
    if folder.is_file():
        raise GolfcError(f"{folder}: is a file; expected the build or run folder that holds train_gpt.py")
    if not folder.is_dir():
        raise GolfcError(f"{folder}: no such folder")
    if not script.is_file():
        raise GolfcError(f"{script}: not found; expected the shipped train_gpt.py in the folder")
    code_bytes = script.stat().st_size
    artifacts = sorted(p for p in folder.glob("final_model.*.ptz") if p.is_file())
    model = max(artifacts, key=lambda p: p.stat().st_size) if artifacts else None
    model_bytes = model.stat().st_size if model else None
    total = code_bytes + (model_bytes or 0)
    return {
        "code_bytes": code_bytes,
        "model_bytes": model_bytes,
        "artifact": str(model) if model else None,
        "total_bytes": total,
        "limit": SIZE_LIMIT,
        "headroom": SIZE_LIMIT - total,
        "fits": total <= SIZE_LIMIT,
    }


def size(
    folder: Path = typer.Argument(
        ..., help="A build or run folder (not a file) holding train_gpt.py and, after a run, final_model.*.ptz."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Submission size: shipped code bytes + compressed model bytes, against 16,000,000."""
    info = measure_size(folder)
    if json_:
        typer.echo(json.dumps(info, indent=2))
    else:
        table = Table(title=f"size of {folder}")
        table.add_column("part")
        table.add_column("bytes", justify="right")
        table.add_row("train_gpt.py", f"{info['code_bytes']:,}")
        table.add_row(
            Path(info["artifact"]).name if info["artifact"] else "model (no artifact found)",
            f"{info['model_bytes'] or 0:,}",
        )
        verdict = "[green]fits[/]" if info["fits"] else "[red]over the limit[/]"
        table.add_row(f"total vs {SIZE_LIMIT:,}: {verdict}", f"{info['total_bytes']:,}")
        console.print(table)
    if not info["fits"]:
        raise typer.Exit(1)


def check_demo_options(steps: int, nproc: int) -> None:
    """Refuse, before any work, a demo that would train forever or that the run-time would reject."""
    if steps < 1:
        raise GolfcError(f"--steps {steps}: expected at least 1 training step")
    if nproc not in DEMO_NPROC:
        raise GolfcError(f"--nproc {nproc}: expected one of {', '.join(map(str, DEMO_NPROC))} (it must divide 8)")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for data, build and run."),
    steps: int = typer.Option(150, "--steps", help="Training steps (at least 1)."),
    vocab: int = typer.Option(512, "--vocab", help="Tokenizer vocabulary for the tiny corpus."),
    nproc: int = typer.Option(1, "--nproc", help="Processes: 1, 2, 4 or 8 (torchrun with gloo on CPU when > 1)."),
    plugins: list[str] = typer.Option([], "--plugins", "-p", help=PLUGINS_HELP),
) -> None:
    """The main job on the built-in tiny corpus: build data, build the baseline, train and evaluate on CPU."""
    import golfc.data
    from golfc.data.build import build_dataset

    check_demo_options(steps, nproc)
    check_output_root(out, OUT_OPTION)  # named as the demo's option, before the data and the build check theirs
    requested = _split_plugins(plugins)
    resolve(Recipe(plugins=requested))  # an unknown or broken plugin fails before the data is built
    tiny_corpus = Path(golfc.data.__file__).parent / "corpus" / "tiny-docs.jsonl.xz"
    data = build_dataset(tiny_corpus, vocab, out / "data", force=True)
    build_submission(requested, {}, out / "submission")
    env = dict(
        os.environ,
        **TINY_DEMO_ENV,
        ITERATIONS=str(steps),
        VOCAB_SIZE=str(data.vocab_size),
        DATA_PATH=str(data.data_path.resolve()),
        TOKENIZER_PATH=str(data.tokenizer_path.resolve()),
        RUN_ID="demo",
    )
    script = (out / "submission" / "train_gpt.py").resolve()
    launcher = (
        [sys.executable]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    )
    console.print(
        f"[bold]training[/] {script} for {steps} steps on CPU (log: {out / 'submission' / 'logs' / 'demo.txt'})"
    )
    completed = subprocess.run([*launcher, str(script)], cwd=out / "submission", env=env, check=False)
    if completed.returncode != 0:
        raise GolfcError(
            f"the demo run exited with code {completed.returncode}; see {out / 'submission' / 'logs' / 'demo.txt'}"
        )
