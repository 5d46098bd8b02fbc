"""``golfc pr DIR --name … --author … --github-id …``: the record folder the challenge expects, from a verified
submission (``DIR/verify/report.json``): README.md, submission.json, one log per seed and the shipped
train_gpt.py, laid out like the merged records of ``records/track_10min_16mb/``."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import typer

from golfc.console import console
from golfc.errors import GolfcError

TRACK = "10min_16mb"
LIMIT_S = 600.0


def load_report(folder: Path) -> dict[str, Any]:
    path = folder / "verify" / "report.json"
    if not (folder / "train_gpt.py").is_file():
        raise GolfcError(f"{folder}: no train_gpt.py; expected a verified golfc build or submission folder")
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise GolfcError(f"{path}: not found; run `golfc verify {folder}` first") from None
    except (OSError, ValueError) as exc:
        raise GolfcError(f"{path}: unreadable ({exc}); run `golfc verify {folder}` again") from None
    if not isinstance(report, dict) or not isinstance(report.get("seeds"), list):
        raise GolfcError(f"{path}: not a golfc verify report; run `golfc verify {folder}` again")
    return report


def slug(name: str) -> str:
    """``Int6 MLP3x + SmearGate`` -> ``Int6_MLP3x_SmearGate``: the records' folder-name style."""
    words = re.findall(r"[A-Za-z0-9.]+", name)
    return "_".join(words)[:80] or "Submission"


def plugin_readmes(lock: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(plugin, first paragraph, evidence line) of every requested plugin's README."""
    if not lock:
        return []
    import golfc_plugins

    root = Path(golfc_plugins.__file__).parent
    out = []
    for name in lock.get("plugins") or []:
        readme = root / name / "README.md"
        if not readme.is_file():
            out.append((name, "(a plugin outside golfc's catalogue: see its own README)", ""))
            continue
        blocks = [b.strip() for b in readme.read_text().split("\n\n") if b.strip()]
        title = blocks[0].lstrip("# ").strip() if blocks else name
        body = next((b for b in blocks[1:] if not b.startswith(("#", "-", "|", "```"))), "")
        evidence = next((b for b in blocks if b.startswith("Evidence")), "")
        out.append((title, " ".join(body.split()), " ".join(evidence.split())))
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def submission_json(report: dict[str, Any], seeds: list[dict[str, Any]], *, name: str, author: str, github_id: str,
                    blurb: str, date: str, lock: dict[str, Any] | None, track: str = TRACK) -> dict[str, Any]:
    """The fields of the merged records' submission.json, each figure from the verified runs."""
    bpb = [s["val_bpb"] for s in seeds]
    loss = [s["val_loss"] for s in seeds if s.get("val_loss") is not None]
    checks = report.get("checks", [])

    def all_pass(check: str) -> bool:
        found = [c for c in checks if c["name"] == check]
        return bool(found) and all(c["verdict"] in ("PASS", "WARN") for c in found)

    train = [s["train_time_s"] for s in seeds if s.get("train_time_s") is not None]
    evals = [s["eval_time_s"] for s in seeds if s.get("eval_time_s") is not None]
    totals = [s["total_bytes"] for s in seeds if s.get("total_bytes")]
    document: dict[str, Any] = {
        "author": author, "github_id": github_id, "name": name, "blurb": blurb, "date": date, "track": track,
        "val_loss": round(_mean(loss), 8) if loss else None,
        "val_bpb": round(_mean(bpb), 8),
        "val_loss_std": None if _std(loss) is None else round(_std(loss), 8),
        "val_bpb_std": None if _std(bpb) is None else round(_std(bpb), 8),
        "seeds": [s["seed"] for s in seeds],
        "seed_results": {str(s["seed"]): {k: s.get(k) for k in ("val_loss", "val_bpb", "artifact_bytes", "total_bytes",
                                                               "steps", "train_time_s", "eval_time_s")}
                         for s in seeds},
        "wallclock_seconds": max(train) if train else None,
        "eval_time_seconds": max(evals) if evals else None,
        "bytes_total": max(totals) if totals else None,
        "bytes_code": report["program"]["bytes"],
        "hardware": report.get("hardware"),
        "pytorch_version": _torch_version(),
        "technique_summary": "golfc build: " + (" + ".join(lock.get("plugins") or ["baseline"]) if lock else
                                                "hand-written train_gpt.py"),
        "compliance": {
            "train_under_600s": bool(train) and max(train) <= LIMIT_S and all_pass("train_clock"),
            "eval_under_600s": bool(evals) and max(evals) <= LIMIT_S and all_pass("eval_clock"),
            "artifact_under_16mb": all_pass("size"),
            "three_seeds": len(seeds) >= 3,
            "golfc_verify": report.get("verdict"),
            "network_isolated": bool(report.get("network", {}).get("isolated")),
            "checks": [{"name": c["name"], "rule": c["rule"], "verdict": c["verdict"], "evidence": c["evidence"]}
                       for c in checks],
        },
    }
    if report.get("statistics", {}).get("against"):
        document["statistics"] = report["statistics"]["against"]
    return document


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def readme(report: dict[str, Any], seeds: list[dict[str, Any]], document: dict[str, Any], *,
           lock: dict[str, Any] | None) -> str:
    """README.md: headline, per-seed table, statistics, recipe (plugin READMEs), compliance, reproduction."""
    total = document.get("bytes_total")
    std = document.get("val_bpb_std")
    lines = [f"# {document['name']}", "",
             f"**val_bpb = {document['val_bpb']:.5f}** ({len(seeds)}-seed mean"
             + (f", std {std:.5f}" if std is not None else "") + ")"
             + (f" | **{total:,} bytes** (largest seed)" if total else "") + f" | {document.get('hardware')}", "",
             document["blurb"], "", f"## {len(seeds)}-seed results", "",
             "| Seed | val_bpb | val_loss | steps | train s | eval s | artifact bytes | total bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in seeds:
        lines.append(f"| {s['seed']} | {s['val_bpb']:.8f} | {s.get('val_loss') or 0:.8f} | {s.get('steps') or '-'} | "
                     f"{_f(s.get('train_time_s'))} | {_f(s.get('eval_time_s'))} | {s.get('artifact_bytes') or '-'} | "
                     f"{s.get('total_bytes') or '-'} |")
    lines.append(f"| **Mean** | **{document['val_bpb']:.8f}** | {_f(document.get('val_loss'), 8)} | | | | | |")
    stats = report.get("statistics") or {}
    lines += ["", "## Statistics", ""]
    lines.append(f"Mean {stats.get('mean_bpb')} bpb (std {stats.get('std_bpb')}), {stats.get('mean_nats')} nats "
                 f"(std {stats.get('std_nats')}), converted with the runs' own val_loss/val_bpb ratio "
                 f"{stats.get('nats_per_bpb')}.")
    against = stats.get("against")
    if against:
        for key in ("record", "progression"):
            test = against.get(key) or {}
            lines.append(f"- {key} test against {against['source']}: Δ {against.get('delta_nats')} nats, one-sided "
                         f"Welch p={test.get('p')} (need >= {test.get('margin_nats')} nats at p < {test.get('alpha')}):"
                         f" {'passes' if test.get('pass') else 'does not pass'}")
    lines += ["", "## Recipe", ""]
    if lock is not None:
        plugins = lock.get("plugins") or []
        overrides = lock.get("overrides") or {}
        command = "golfc build" + (f" --plugins {','.join(plugins)}" if plugins else "") + "".join(
            f" --set {k}={v}" for k, v in sorted(overrides.items()))
        lines += [f"Built by golfc {lock.get('golfc_version')}: `{command}`"
                  + (" (the baseline's core plus the plugins below" if plugins else " (the baseline")
                  + "; `golfc.lock` pins every section's sha256).", ""]
        for title, body, evidence in plugin_readmes(lock):
            lines += [f"### {title}", "", body] + ([evidence] if evidence else []) + [""]
        if not plugins:
            lines += ["The reference baseline, no plugins.", ""]
    else:
        lines += ["A hand-written `train_gpt.py` (not a golfc build).", ""]
    lines += ["## Compliance (golfc verify)", "",
              f"Every seed was rerun by `golfc verify` ({report.get('network', {}).get('how')}); overall verdict "
              f"**{report.get('verdict')}**.", "", "| check | rule | verdict | evidence |", "|---|---|---|---|"]
    for c in report.get("checks", []):
        lines.append(f"| {c['name']} | {c['rule']} | {c['verdict']} | {c['evidence'].replace('|', '/')} |")
    env = report.get("config", {}).get("env") or {}
    prefix = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
    nproc = report.get("config", {}).get("nproc", 8)
    lines += ["", "## Reproduction", "", "```bash",
              f"SEED={seeds[0]['seed']} {prefix + ' ' if prefix else ''}torchrun --standalone "
              f"--nproc_per_node={nproc} train_gpt.py",
              f"golfc verify . --seeds {','.join(str(s['seed']) for s in seeds)} --nproc {nproc}", "```", ""]
    return "\n".join(lines)


def _f(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def write_record(folder: Path, out: Path, *, name: str, author: str, github_id: str, blurb: str | None,
                 date: str | None, track: str = TRACK) -> Path:
    """Write the record folder; returns it. Only seeds that finished with a score are included."""
    report = load_report(folder)
    seeds = [s for s in report["seeds"] if s.get("status") == "ok" and s.get("val_bpb")]
    if not seeds:
        raise GolfcError(f"{folder / 'verify' / 'report.json'}: no seed finished with a score; nothing to submit")
    lock_path = folder / "golfc.lock"
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else None
    day = date or dt.date.today().isoformat()
    blurb = blurb or (f"golfc build ({', '.join(lock.get('plugins') or ['baseline'])}), verified by golfc verify "
                      f"on {len(seeds)} seeds." if lock else f"Verified by golfc verify on {len(seeds)} seeds.")
    if out.exists() and any(out.iterdir()):
        raise GolfcError(f"{out}: exists and is not empty; expected a new folder for the record")
    out.mkdir(parents=True, exist_ok=True)
    document = submission_json(report, seeds, name=name, author=author, github_id=github_id, blurb=blurb, date=day,
                               lock=lock, track=track)
    shutil.copyfile(folder / "train_gpt.py", out / "train_gpt.py")
    for s in seeds:
        shutil.copyfile(folder / s["log"], out / f"train_seed{s['seed']}.log")
    (out / "submission.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "README.md").write_text(readme(report, seeds, document, lock=lock))
    plot = folder / "verify" / "loss_curves.png"
    if plot.is_file():
        shutil.copyfile(plot, out / "loss_curves.png")
    return out


def pr(
    folder: Path = typer.Argument(..., help="A folder verified by golfc verify (DIR/verify/report.json)."),
    name: str = typer.Option(..., "--name", help="The record's title, e.g. 'SP1024 baseline + sliding window'."),
    author: str = typer.Option(..., "--author", help="Your name as the records show it."),
    github_id: str = typer.Option(..., "--github-id", help="Your GitHub user name."),
    blurb: str | None = typer.Option(None, "--blurb", help="One paragraph: what the submission does."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Record folder (default: "
                                    "DIR/verify/record/<date>_<Name>)."),
    date: str | None = typer.Option(None, "--date", help="YYYY-MM-DD (default: today)."),
    track: str = typer.Option(TRACK, "--track", help="submission.json's track: 10min_16mb, or non-record-16mb for a "
                              "run that is not a record attempt (the audit then reads its clocks as such)."),
) -> None:
    """Write the challenge's record folder from a verified submission: README.md, submission.json, the logs, the
    shipped train_gpt.py (ready for records/track_10min_16mb/)."""
    if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise GolfcError(f"--date {date!r}: expected YYYY-MM-DD")
    for option, value in (("--name", name), ("--author", author), ("--github-id", github_id)):
        if not value.strip():
            raise GolfcError(f"{option}: empty; expected text")
    day = date or dt.date.today().isoformat()
    target = out or folder / "verify" / "record" / f"{day}_{slug(name)}"
    written = write_record(folder, target, name=name, author=author, github_id=github_id, blurb=blurb, date=day,
                           track=track)
    console.print(f"record folder: {written} (README.md, submission.json, train_gpt.py, "
                  f"{len(list(written.glob('train_seed*.log')))} logs)")
    typer.echo(str(written))
