"""``golfc audit FOLDER [FOLDER …] [--json] [--against VALUES|FOLDER]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from golfc.audit.findings import Finding
from golfc.audit.folder import FolderAudit, audit_folder, load_against
from golfc.audit.report import json_document, print_report, summary_table
from golfc.audit.rulebook import lookup, render_text
from golfc.errors import GolfcError

PIPED_WIDTH = 160  # rich falls back to 80 columns when not writing to a terminal: too narrow for the tables


def audit(
    folders: Annotated[
        list[Path] | None, typer.Argument(help="Submission folders (train_gpt.py, logs, submission.json).")
    ] = None,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document instead of the report (docs/audit-json.md)."),
    ] = False,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Compare with other runs: comma-separated val_bpb "
            "values (1.0611,1.0614,…) or another submission folder. Failing the record test is an L23 FAIL.",
        ),
    ] = None,
    explain: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="RULE",
            help="Print what a rule (L1..L23, C1..C4, NET, INPUT) means, the evidence golfc needs and the "
            "ruling behind it, then exit.",
        ),
    ] = None,
) -> None:
    """Judge submission folders without running them: unwrap, static legality checks, logs, size, statistics.

    Exit code 0 for PASS or WARN, 1 for FAIL, 2 for unusable input (missing folder, a file, no readable script).
    """
    if explain is not None:
        _explain(explain)
    if not folders:  # a usage error like any missing argument: click prints the usage line and exits 2
        raise click.UsageError("Missing argument 'FOLDERS...' (or give --explain RULE).")
    reference = load_against(against) if against else None
    audits = [audit_folder(folder, reference) for folder in folders]
    stdout = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    for result in audits:
        for problem in result.problems():
            print(problem_line(result.folder, problem), file=sys.stderr)
    if json_:
        print(json_document(audits))
    else:
        _print(stdout, audits)
    raise typer.Exit(max(a.exit_code for a in audits))


def _explain(rule_id: str) -> None:
    try:
        rule = lookup(rule_id)
    except KeyError as exc:
        raise GolfcError(f"--explain: {exc.args[0]}") from None
    print(render_text(rule), end="")
    raise typer.Exit(0)


def problem_line(folder: Path, problem: Finding) -> str:
    """``FOLDER/FILE:LINE: message`` on one line (never wrapped), so that each names its folder and file."""
    where = folder if problem.file is None else folder / problem.file
    line = "" if problem.line is None else f":{problem.line}"
    return f"{where}{line}: {problem.message}"


def _print(console: Console, audits: list[FolderAudit]) -> None:
    for result in audits:
        if result.has_report:  # a missing path, an empty script and no logs: the stderr line says it all
            print_report(console, result)
    if len(audits) > 1:
        console.print(summary_table(audits))
