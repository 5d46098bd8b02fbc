"""The terminal report (rich) and the JSON document."""

from __future__ import annotations

import json
import math

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from golfc.audit.crosscheck import SIZE_CAP
from golfc.audit.findings import Severity
from golfc.audit.folder import FolderAudit, run_role
from golfc.audit.logs import RunLog
from golfc.audit.schema import SCHEMA_VERSION

VERDICT_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red"}
SEVERITY_STYLE = {Severity.INFO: "dim", Severity.WARN: "yellow", Severity.FAIL: "bold red"}


def _number(value: object, digits: int = 8) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict_panel(audit: FolderAudit) -> Panel:
    lines = [Text.assemble(("verdict ", "bold"), (audit.verdict, VERDICT_STYLE[audit.verdict]))]
    if audit.unusable:
        lines.append(Text(f"unusable input: {audit.unusable} (exit 2)", style="bold red"))
    if audit.script is not None:
        wrapped = f" · {len(audit.script.layers)} payload(s) unwrapped" if audit.script.is_wrapped else ""
        lines.append(
            Text(
                f"train_gpt.py: {audit.script.shipped_bytes:,} bytes shipped, "
                f"{audit.script.unwrapped_bytes:,} bytes of source{wrapped}"
            )
        )
        if audit.code is not None and audit.code.packed_counts:
            lines.append(
                Text(
                    f"counted code: {audit.code.counted:,} bytes, the script packed by golfc ({audit.code.method}), "
                    "as records from 2026-04-10 on count it"
                )
            )
        for layer in audit.script.layers[:6]:
            lines.append(Text(f"  {layer}", style="dim"))
    if audit.config_notes:
        lines.append(Text("overridden knobs: " + ", ".join(audit.config_notes[:12]), style="dim"))
    counts = {s: sum(1 for f in audit.findings if f.severity == s) for s in Severity}
    lines.append(Text(f"{counts[Severity.FAIL]} FAIL · {counts[Severity.WARN]} WARN · {counts[Severity.INFO]} INFO"))
    return Panel(Group(*lines), title=f"golfc audit · {audit.folder}", border_style=VERDICT_STYLE[audit.verdict])


def findings_table(audit: FolderAudit) -> Table:
    table = Table(title="findings", show_lines=False, expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("where", overflow="fold", max_width=42)
    table.add_column("message", overflow="fold")
    for finding in audit.findings:
        table.add_row(
            Text(finding.severity.name, style=SEVERITY_STYLE[finding.severity]),
            finding.rule,
            finding.location,
            finding.message,
        )
    return table


def seeds_table(audit: FolderAudit) -> Table:
    table = Table(title="seeds (dim: other logs, listed and not counted)")
    for column in (
        "seed",
        "role",
        "log",
        "val_bpb",
        "val_loss",
        "score line",
        "artifact",
        "steps",
        "step_avg ms",
        "train s",
        "eval s",
        "val tokens",
    ):
        table.add_column(column, justify="right" if column not in ("log", "score line") else "left")
    primary = {id(r) for r in audit.primary}
    for run in audit.runs:
        style = None if id(run) in primary else "dim"
        table.add_row(
            str(run.seed),
            run_role(run, id(run) in primary),
            run.path.name,
            _number(run.val_bpb),
            _number(run.val_loss),
            _score_text(run),
            _number(run.artifact_bytes),
            _number(run.steps),
            _number(run.step_avg_ms, 2),
            _number(run.train_time_s, 3),
            _number(run.eval_time_s, 3),
            _number(run.val_tokens),
            style=style,
        )
    return table


def _score_text(run: RunLog) -> str:
    """The score line's label, and the other score lines of the log with their values (not counted)."""
    if run.score_label is None:
        return "no score"
    others = [f"{s.label} {_number(s.val_bpb)}" for s in run.other_scores]
    return run.score_label + (f" (also: {'; '.join(others)})" if others else "")


def size_table(audit: FolderAudit) -> Table:
    table = Table(title=f"size (cap {SIZE_CAP:,} bytes)")
    for column in ("log", "seed", "shipped code", "artifact", "total", "headroom", "log: code", "log: total"):
        table.add_column(column, justify="left" if column == "log" else "right")
    for row in audit.sizes:
        headroom = None if row.total is None else SIZE_CAP - row.total
        style = "bold red" if headroom is not None and headroom < 0 else None
        table.add_row(
            row.log,
            str(row.seed),
            _number(row.code_bytes),
            _number(row.artifact_bytes),
            _number(row.total),
            _number(headroom),
            _number(row.logged_code_bytes),
            _number(row.logged_total),
            style=style,
        )
    return table


def stats_panel(audit: FolderAudit) -> Panel:
    stats = audit.stats
    lines = [
        Text(
            f"n={stats.get('n', 0)}  mean val_bpb={_number(stats.get('mean_bpb'))}  "
            f"std={_number(stats.get('std_bpb'))}  mean nats={_number(stats.get('mean_nats'))}"
        )
    ]
    against = stats.get("against")
    if isinstance(against, dict):
        lines.append(
            Text(
                f"against {against.get('source')}: n={against.get('n')} mean val_bpb="
                f"{_number(against.get('mean_bpb'))}  Δ nats={_number(against.get('delta_nats'))}"
            )
        )
        for key, label in (("record", "record test (≥0.005 nats, p<0.01)"), ("progression", "progression (p<0.25)")):
            test = against.get(key)
            if isinstance(test, dict):
                outcome = {True: "pass", False: "fail", None: "n/a"}[test.get("pass")]
                p = test.get("p")
                lines.append(
                    Text(
                        f"  {label}: t={_number(test.get('t'), 4)} p={p if p is None else f'{p:.3g}'} → {outcome}",
                        style="green" if outcome == "pass" else "yellow",
                    )
                )
        if "note" in against:
            lines.append(Text(f"  {against['note']}", style="dim"))
    return Panel(Group(*lines), title="statistics")


def print_report(console: Console, audit: FolderAudit) -> None:
    console.print(verdict_panel(audit))
    if audit.findings:
        console.print(findings_table(audit))
    if audit.runs:
        console.print(seeds_table(audit))
    if audit.sizes:
        console.print(size_table(audit))
    console.print(stats_panel(audit))


def summary_table(audits: list[FolderAudit]) -> Table:
    table = Table(title="summary")
    for column in ("folder", "verdict", "FAIL", "WARN", "seeds", "mean val_bpb", "max total bytes", "exit"):
        table.add_column(column, justify="left" if column in ("folder", "verdict") else "right")
    for audit in audits:
        fails = sum(1 for f in audit.findings if f.severity == Severity.FAIL)
        warns = sum(1 for f in audit.findings if f.severity == Severity.WARN)
        table.add_row(
            str(audit.folder),
            Text(audit.verdict, style=VERDICT_STYLE[audit.verdict]),
            str(fails),
            str(warns),
            str(len(audit.primary)),
            _number(audit.stats.get("mean_bpb")),
            _number(audit.total_bytes_max),
            str(audit.exit_code),
        )
    return table


def json_document(audits: list[FolderAudit]) -> str:
    """One strict JSON object of the same shape for one folder or many (golfc/audit/schema.py, docs/audit-json.md):
    the worst verdict, the exit code and one entry per folder under ``audits``, in the order given.

    Non-finite numbers (a t statistic of identical seeds is ±inf) become null: strict parsers reject NaN.
    """
    document = {
        "schema_version": SCHEMA_VERSION,
        "verdict": max((a.verdict for a in audits), key=["PASS", "WARN", "FAIL"].index),
        "exit_code": max(a.exit_code for a in audits),
        "audits": [a.as_json() for a in audits],
    }
    return json.dumps(finite_only(document), indent=2, allow_nan=False)


def finite_only(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_only(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_only(item) for item in value]
    return value
