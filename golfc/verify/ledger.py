"""The data-access ledger of one run: which data files its processes opened, when, and in which phase.

The events come from the audit hook of ``golfc/verify/hook/sitecustomize.py`` (one JSON line per opened data
file, per process); the phases from :class:`golfc.verify.phases.PhaseTracker`. Findings (docs/rules.md):

- a training shard opened during evaluation: **L9** FAIL (no training data access during evaluation);
- a training shard opened after the training loop, before evaluation (export, quantization): **L19** WARN
  (calibration after the training clock);
- a validation shard opened while the model trains, or during the export: **L1** / **L19** WARN (validation
  data read where training or calibration runs). Reading validation shards at set-up, before the first step, is
  what the reference does (it loads the validation tokens once, up front) and is no finding: where those tokens
  go is the audit's data-flow question (L1, L3) and, for golfc builds, the val-independence rerun's (L3, L21).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path

from golfc.verify.findings import CheckResult
from golfc.verify.phases import PhaseTracker

HOOK_DIR = Path(__file__).resolve().parent / "hook"


def ledger_env(ledger_dir: Path, watch: list[Path], pythonpath: str | None) -> dict[str, str]:
    """Environment that makes every Python process of a run write its ledger into ``ledger_dir``."""
    paths = [str(HOOK_DIR)] + ([pythonpath] if pythonpath else [])
    return {
        "GOLFC_LEDGER_DIR": str(ledger_dir),
        "GOLFC_LEDGER_WATCH": os.pathsep.join(str(p) for p in watch),
        "PYTHONPATH": os.pathsep.join(paths),
    }


@dataclass(frozen=True)
class Access:
    """One opened data file: seconds since the run's launch, pid, rank, path and mode."""

    t: float
    pid: int
    rank: str | None
    path: str
    mode: str | None


def read_ledger(ledger_dir: Path, launched_at: float) -> list[Access]:
    """Every event of every process, in time order (a torn last line of a killed process is skipped)."""
    events: list[Access] = []
    for file in sorted(ledger_dir.glob("ledger.*.jsonl")):
        for line in file.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
                events.append(Access(float(item["t"]) - launched_at, int(item["pid"]), item.get("rank"),
                                     str(item["path"]), item.get("mode")))
            except (ValueError, KeyError, TypeError):
                continue
    return sorted(events, key=lambda e: e.t)


def kind_of(path: str, data_path: str | None) -> str:
    """train, val, tokenizer or data: by the challenge's shard names, under DATA_PATH or anywhere."""
    name = os.path.basename(path)
    if fnmatch.fnmatch(name, "fineweb_train_*"):
        return "train"
    if fnmatch.fnmatch(name, "fineweb_val_*"):
        return "val"
    if name.endswith((".model", ".vocab")):
        return "tokenizer"
    if data_path and "val" in name and os.path.abspath(path).startswith(os.path.abspath(data_path)):
        return "val"
    return "data"


def summarize_access(events: list[Access], tracker: PhaseTracker, data_path: str | None) -> list[dict[str, object]]:
    """One row per (file, phase): kind, how many opens, first and last time (seconds since launch)."""
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for event in events:
        phase = tracker.phase_at(event.t)
        row = rows.setdefault((event.path, phase), {
            "path": event.path, "kind": kind_of(event.path, data_path), "phase": phase, "opens": 0,
            "first_s": round(event.t, 3), "last_s": round(event.t, 3), "ranks": [],
        })
        row["opens"] = int(row["opens"]) + 1
        row["last_s"] = round(event.t, 3)
        if event.rank is not None and event.rank not in row["ranks"]:
            row["ranks"].append(event.rank)  # type: ignore[union-attr]
    return sorted(rows.values(), key=lambda r: (r["first_s"], r["path"]))


def last_read(rows: list[dict[str, object]], kind: str) -> float | None:
    times = [float(r["last_s"]) for r in rows if r["kind"] == kind]  # type: ignore[arg-type]
    return max(times) if times else None


def access_findings(seed: int, rows: list[dict[str, object]], hooked: bool) -> list[CheckResult]:
    """The data-access check of one seed: FAIL/WARN per rule, else one PASS that says what was read when."""
    if not hooked:
        return [CheckResult("data_access", "L9", "SKIP", f"seed {seed}: no ledger was written (the audit hook "
                            "did not load: python -S/-I, or no Python process opened a data file)", {"seed": seed})]
    out: list[CheckResult] = []
    rules = {
        ("train", "eval"): ("L9", "FAIL", "training data read during evaluation"),
        ("train", "export"): ("L19", "WARN", "training data read after the training loop, before evaluation "
                                             "(calibration after the training clock?)"),
        ("val", "training"): ("L1", "WARN", "validation data read while the model trains"),
        ("val", "export"): ("L19", "WARN", "validation data read during the export (calibration on validation?)"),
    }
    for row in rows:
        found = rules.get((str(row["kind"]), str(row["phase"])))
        if found is None:
            continue
        rule, verdict, what = found
        out.append(CheckResult("data_access", rule, verdict,
                               f"seed {seed}: {what}: {os.path.basename(str(row['path']))} opened {row['opens']}x "
                               f"at {row['first_s']}-{row['last_s']} s ({row['phase']})",
                               {"seed": seed, "path": row["path"], "phase": row["phase"]}))
    if not out:
        kinds = sorted({f"{r['kind']}@{r['phase']}" for r in rows})
        out.append(CheckResult("data_access", "L9", "PASS",
                               f"seed {seed}: {len(rows)} (file, phase) pairs, {', '.join(kinds) or 'no data files'}; "
                               "no training data at evaluation, no validation data while training",
                               {"seed": seed}))
    return out
