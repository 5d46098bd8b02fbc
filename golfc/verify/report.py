"""What ``golfc verify`` writes: ``DIR/verify/report.json``, ``report.md``, ``loss_curves.png``, and the rich
summary table; plus the statistics of the seeds (golfc/audit/stats.py: mean, std, Welch record and progression
tests in nats, with the runs' own val_loss/val_bpb ratio)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from golfc.audit.folder import load_against
from golfc.audit.stats import Sample, compare, parse_values, summarize
from golfc.errors import GolfcError
from golfc.verify.findings import CheckResult

VERDICT_ORDER = {"FAIL": 3, "WARN": 2, "PASS": 1, "SKIP": 0}
VERDICT_STYLE = {"PASS": "green", "FAIL": "bold red", "WARN": "yellow", "SKIP": "dim"}


def overall(checks: list[CheckResult]) -> str:
    """FAIL, WARN or PASS: the worst verdict (SKIPs alone are PASS: nothing was found)."""
    worst = max((VERDICT_ORDER[c.verdict] for c in checks), default=1)
    return {3: "FAIL", 2: "WARN"}.get(worst, "PASS")


def sample_of(seeds: list[dict[str, Any]]) -> Sample:
    scored = [s for s in seeds if s.get("val_bpb")]
    return Sample(tuple(float(s["val_bpb"]) for s in scored),
                  tuple((float(s["val_loss"]) / float(s["val_bpb"])) if s.get("val_loss") else None for s in scored))


def load_reference(against: str | None, against_values: str | None) -> tuple[Sample, str] | None:
    """``--against REPORT.json`` (a verify report or a submission.json), ``--against FOLDER`` (a submission
    folder, read as golfc audit reads it) or ``--against-values 1.0611,1.0614``; bad input is a GolfcError."""
    if against and against_values:
        raise GolfcError("--against and --against-values: give one reference, not both")
    if against_values:
        try:
            values = parse_values(against_values)
        except ValueError as exc:
            raise GolfcError(f"--against-values {against_values!r}: {exc}; expected val_bpb values like "
                             "1.0611,1.0614") from None
        return Sample(tuple(values), tuple(None for _ in values)), f"values {against_values}"
    if not against:
        return None
    path = Path(against)
    if path.is_dir():
        return load_against(against)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GolfcError(f"--against {against}: {exc}; expected a verify report.json, a submission.json or a "
                         "submission folder") from None
    if isinstance(document, dict) and isinstance(document.get("seeds"), list):
        sample = sample_of([s for s in document["seeds"] if isinstance(s, dict)])
    elif isinstance(document, dict) and isinstance(document.get("seed_results"), dict):
        rows = [r for r in document["seed_results"].values() if isinstance(r, dict)]
        sample = sample_of(rows)
    else:
        raise GolfcError(f"--against {against}: no seeds or seed_results; expected a verify report.json or a "
                         "submission.json")
    if not sample.bpb:
        raise GolfcError(f"--against {against}: no val_bpb values in it")
    return sample, str(path)


def statistics(seeds: list[dict[str, Any]], reference: tuple[Sample, str] | None) -> tuple[dict[str, Any],
                                                                                            list[CheckResult]]:
    """The summary of the scored seeds, the tests against the reference, and the L23 checks they give."""
    sample = sample_of(seeds)
    stats: dict[str, Any] = summarize(sample)
    checks: list[CheckResult] = []
    n = len(sample.bpb)
    if n < 3:
        checks.append(CheckResult("seeds", "L23", "WARN", f"{n} scored seed(s); a record needs three", {"n": n}))
    else:
        checks.append(CheckResult("seeds", "L23", "PASS", f"{n} scored seeds", {"n": n}))
    if reference is not None:
        result = compare(sample, reference[0], reference[1])
        stats["against"] = result
        test = result.get("record")
        if not isinstance(test, dict) or test.get("pass") is None:
            note = result.get("note") or (test or {}).get("note", "not run")
            checks.append(CheckResult("record_test", "L23", "WARN", f"record test against {reference[1]} not run: "
                                      f"{note}", {}))
        else:
            progression = result.get("progression") or {}
            text = (f"mean {result['delta_nats']:+.5f} nats against {reference[1]}: record test (>= "
                    f"{test['margin_nats']} nats at p < {test['alpha']}) p={test['p']:.3g}; progression test "
                    f"(p < {progression.get('alpha')}) p={_fmt_p(progression.get('p'))}")
            checks.append(CheckResult("record_test", "L23", "PASS" if test["pass"] else "FAIL", text,
                                      {"record": test, "progression": progression}))
    return stats, checks


def _fmt_p(p: object) -> str:
    return f"{p:.3g}" if isinstance(p, float) else "-"


def summary_table(report: dict[str, Any]) -> Table:
    """One row per seed: status, score, clocks, bytes, and the worst verdict of its checks."""
    table = Table(title=f"golfc verify {report['dir']}: {report['verdict']}")
    for name in ("seed", "status", "val_bpb", "val_loss", "train s (log/golfc)", "eval s (log/golfc)", "bytes",
                 "checks"):
        table.add_column(name, justify="left" if name in ("seed", "status", "checks") else "right")
    for seed in report["seeds"]:
        mine = [c for c in report["checks"] if c["details"].get("seed") == seed["seed"]]
        worst = overall([CheckResult(**c) for c in mine])
        table.add_row(
            str(seed["seed"]), seed["status"], _num(seed.get("val_bpb"), 8), _num(seed.get("val_loss"), 8),
            f"{_num(seed.get('train_time_s'), 1)} / {_num(seed.get('train_wall_s'), 1)}",
            f"{_num(seed.get('eval_time_s'), 1)} / {_num(seed.get('eval_wall_s'), 1)}",
            f"{seed['total_bytes']:,}" if seed.get("total_bytes") else "-",
            f"[{VERDICT_STYLE[worst]}]{worst}[/]",
        )
    stats = report.get("statistics") or {}
    if stats.get("n"):
        table.caption = (f"mean val_bpb {stats.get('mean_bpb')} std {stats.get('std_bpb')}"
                         + (f"; {stats['against']['source']}: Δ {stats['against'].get('delta_nats')} nats"
                            if stats.get("against") else ""))
    return table


def checks_table(checks: list[dict[str, Any]]) -> Table:
    table = Table(title="checks")
    table.add_column("check")
    table.add_column("rule")
    table.add_column("verdict")
    table.add_column("evidence", overflow="fold")
    for check in checks:
        style = VERDICT_STYLE[check["verdict"]]
        table.add_row(check["name"], check["rule"], f"[{style}]{check['verdict']}[/]", check["evidence"])
    return table


def _num(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    """report.md: the same facts as report.json, for a reviewer."""
    lines = [f"# golfc verify: {report['verdict']}", "",
             f"Program `{report['program']['path']}` ({report['program']['bytes']:,} bytes, sha256 "
             f"`{report['program']['sha256'][:16]}…`), {report['config']['nproc']} process(es) per run, "
             f"seeds {', '.join(map(str, report['config']['seeds']))}; network: {report['network']['how']}.", "",
             "## Seeds", "",
             "| seed | status | val_bpb | val_loss | steps | train s (log / golfc) | eval s (log / golfc) | "
             "artifact bytes | total bytes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["seeds"]:
        lines.append(f"| {s['seed']} | {s['status']} | {_num(s.get('val_bpb'), 8)} | {_num(s.get('val_loss'), 8)} | "
                     f"{s.get('steps') or '-'} | {_num(s.get('train_time_s'), 3)} / {_num(s.get('train_wall_s'), 3)} | "
                     f"{_num(s.get('eval_time_s'), 3)} / {_num(s.get('eval_wall_s'), 3)} | "
                     f"{s.get('artifact_bytes') or '-'} | {s.get('total_bytes') or '-'} |")
    stats = report.get("statistics") or {}
    lines += ["", "## Statistics", ""]
    if stats.get("n"):
        lines.append(f"n={stats['n']}, mean val_bpb {stats.get('mean_bpb')}, std {stats.get('std_bpb')}; mean "
                     f"{stats.get('mean_nats')} nats (std {stats.get('std_nats')}, {stats.get('nats_per_bpb')} nats "
                     "per bpb: the runs' own ratio).")
        against = stats.get("against")
        if against:
            for key in ("record", "progression"):
                test = against.get(key) or {}
                lines.append(f"- {key} test against {against['source']}: Δ {against.get('delta_nats')} nats, margin "
                             f"{test.get('margin_nats')}, p={_fmt_p(test.get('p'))} (alpha {test.get('alpha')}): "
                             f"{'pass' if test.get('pass') else 'no' if test.get('pass') is False else 'not run'}")
    else:
        lines.append("No scored seed.")
    lines += ["", "## Checks", "", "| check | rule | verdict | evidence |", "|---|---|---|---|"]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {c['rule']} | {c['verdict']} | {c['evidence'].replace('|', '/')} |")
    lines += ["", "## Phases (golfc's clock, seconds since launch)", ""]
    for s in report["seeds"]:
        phases = ", ".join(f"{p['name']} {p['start_s']:.1f}-{p['end_s']:.1f}" for p in s.get("phases", []))
        last = s.get("last_train_read_s")
        lines.append(f"- seed {s['seed']}: {phases or 'none seen'}"
                     + (f"; last training-data read at {last:.1f}" if last is not None else ""))
    if report.get("own_seconds"):
        own = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["own_seconds"].items())
        lines += ["", f"Verify's own work outside the seed runs: {own}."]
    if report.get("plot"):
        lines += ["", f"![loss curves]({report['plot']})"]
    return "\n".join(lines) + "\n"


def plot_curves(report: dict[str, Any], out: Path) -> str | None:
    """A PNG of the train and val loss curves of every seed; None (with the reason) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (train_ax, val_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for seed in report["seeds"]:
        curves = seed.get("curves") or {}
        if curves.get("train"):
            steps, losses = zip(*curves["train"])
            train_ax.plot(steps, losses, label=f"seed {seed['seed']}", linewidth=1)
        if curves.get("val"):
            steps, losses = zip(*curves["val"])
            val_ax.plot(steps, losses, marker="o", label=f"seed {seed['seed']}", linewidth=1)
    for ax, title in ((train_ax, "train loss"), (val_ax, "val loss")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("nats")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name
