"""Audit one submission folder: unwrap the script, check it statically, read the logs, cross-check, score.

Nothing here imports or runs the submission's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from golfc.audit.codesize import CodeCount, count_code
from golfc.audit.config import UNKNOWN, readme_environment
from golfc.audit.crosscheck import (
    SizeRow,
    check_calibration_clock,
    check_runs,
    check_sizes,
    check_submission,
    log_name,
    select_primary,
    size_rows,
)
from golfc.audit.dataprep import check_prep
from golfc.audit.findings import INPUT_RULE, Finding, Severity, verdict_of
from golfc.audit.logs import RunLog, find_logs, parse_log
from golfc.audit.reading import FileTooLarge, read_text_limited
from golfc.audit.rules.bytecount import upgrade_file_tables
from golfc.audit.rules.native import check_native
from golfc.audit.rules.paidprefix import ShippedFile
from golfc.audit.static import check_units
from golfc.audit.stats import Sample, compare, parse_values, summarize
from golfc.audit.submission import Submission, read_submission
from golfc.audit.unwrap import Unwrapped, unwrap_script
from golfc.errors import GolfcError

SCRIPT_NAMES = ("train_gpt.py",)


@dataclass
class FolderAudit:
    folder: Path
    script: Unwrapped | None = None
    code: CodeCount | None = None  # the shipped code bytes and the packed form golfc counts for a readable script
    findings: list[Finding] = field(default_factory=list)
    runs: list[RunLog] = field(default_factory=list)
    primary: list[RunLog] = field(default_factory=list)
    sizes: list[SizeRow] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)
    unusable: str | None = None  # why the folder cannot be audited as a submission (exit code 2)
    unusable_finding: Finding | None = None  # the one line that says so
    config_notes: list[str] = field(default_factory=list)
    train_calibrations: tuple[tuple[str, str | None, int | None], ...] = ()  # see StaticResult

    @property
    def verdict(self) -> str:
        return verdict_of(self.findings)

    @property
    def exit_code(self) -> int:
        if self.unusable is not None:
            return 2
        return 1 if self.verdict == "FAIL" else 0

    @property
    def total_bytes_max(self) -> int | None:
        totals = [row.total for row in self.sizes if row.total is not None]
        return max(totals) if totals else None

    def sample(self) -> Sample:
        return Sample(
            tuple(r.val_bpb for r in self.primary if r.val_bpb is not None),
            tuple(r.nats_per_bpb for r in self.primary if r.val_bpb is not None),
        )

    @property
    def has_report(self) -> bool:
        """Whether there is anything to report: not for an unusable folder with neither a script nor a log (a
        missing path, an empty train_gpt.py and no logs), whose one stderr line says it all."""
        return not (self.unusable is not None and self.script is None and not self.runs)

    def problems(self) -> list[Finding]:
        """Input problems, one line each (unreadable files, missing script, logs without a score). A folder with
        nothing to report gets only the line that makes it unusable: "no logs" and the like follow from it."""
        if not self.has_report and self.unusable_finding is not None:
            return [self.unusable_finding]
        return [f for f in self.findings if f.rule == INPUT_RULE]

    def as_json(self) -> dict[str, object]:
        primary_paths = {id(r) for r in self.primary}
        return {
            "folder": str(self.folder),
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "findings": [f.as_json() for f in self.findings],
            "seeds": [_seed_json(run, id(run) in primary_paths) for run in self.runs],
            "code_bytes": self.script.shipped_bytes if self.script else None,
            "unwrapped_code_bytes": self.script.unwrapped_bytes if self.script else None,
            "packed_code_bytes": self.code.packed if self.code else None,
            "counted_code_bytes": self.code.counted if self.code else None,
            "total_bytes_max": self.total_bytes_max,
            "stats": self.stats,
            "unusable": self.unusable,
        }


def run_role(run: RunLog, primary: bool) -> str:
    """``claimed``: the seed's score that submission.json claims; ``counted``: the seed's score, with no claim to
    match; ``other``: another log of a counted seed, or a log without a score (listed, not counted)."""
    if not primary:
        return "other"
    return "claimed" if run.claimed else "counted"


def _seed_json(run: RunLog, primary: bool) -> dict[str, object]:
    return {
        "seed": run.seed,
        "role": run_role(run, primary),
        "val_bpb": run.val_bpb,
        "val_loss": run.val_loss,
        "artifact_bytes": run.artifact_bytes,
        "train_time_s": run.train_time_s,
        "eval_time_s": run.eval_time_s,
        "log": log_name(run),
        "primary": primary,
        "score_line": run.score_label,
        "other_scores": [
            {"score_line": s.label, "val_bpb": s.val_bpb, "val_loss": s.val_loss, "line": s.line}
            for s in run.other_scores
        ],
        "steps": run.steps,
        "step_avg_ms": run.step_avg_ms,
        "code_bytes_logged": run.code_bytes,
        "total_bytes_logged": run.total_bytes,
        "val_tokens": run.val_tokens,
    }


def find_script(folder: Path) -> Path | None:
    """``train_gpt.py`` (whatever kind of file it is: reading refuses non-regular ones), else ``train_gpt*.py``."""
    for name in SCRIPT_NAMES:
        if (folder / name).exists() or (folder / name).is_symlink():
            return folder / name
    candidates = sorted(folder.glob("train_gpt*.py"))
    return candidates[0] if candidates else None


def _unusable(audit: FolderAudit, reason: str, message: str | None = None, file: str | None = None) -> None:
    """Input the audit cannot judge: exit code 2 (``--help``), and one WARN finding, the same for every such
    case: it is not a rule the submission breaks (FAIL), and it does not pass either."""
    audit.unusable = reason
    audit.unusable_finding = Finding(INPUT_RULE, Severity.WARN, message or reason, file, None)
    audit.findings.append(audit.unusable_finding)


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be audited at all, or None."""
    if folder.is_dir():
        try:
            next(folder.iterdir(), None)
        except OSError as exc:
            return f"unreadable folder: {exc.strerror or exc}"
        return None
    if folder.exists():
        return "is a file, not a folder: give the submission folder that contains train_gpt.py"
    return "no such folder"


def audit_folder(folder: Path, against: tuple[Sample, str] | None = None) -> FolderAudit:
    """Every part of the audit that the folder's contents allow; problems are findings, never exceptions."""
    audit = FolderAudit(folder)
    problem = _folder_problem(folder)
    if problem is not None:
        _unusable(audit, problem)
        return audit
    submission, problems = read_submission(folder)
    audit.findings.extend(problems)
    _read_logs(audit)
    audit.primary = select_primary(audit.runs, submission)
    _check_script(audit, folder)
    audit.findings.extend(check_prep(folder))
    audit.findings.extend(check_native(folder))
    audit.code = count_code(audit.script) if audit.script else None
    audit.sizes = size_rows(audit.runs, audit.code)
    audit.findings.extend(check_sizes(audit.sizes, audit.code))
    audit.findings.extend(check_runs(audit.runs, audit.primary, submission is not None and submission.non_record))
    audit.findings.extend(check_calibration_clock(audit.primary or audit.runs, audit.train_calibrations))
    if submission is not None:
        audit.findings.extend(check_submission(submission, audit.runs, audit.primary, audit.code))
        audit.findings = upgrade_file_tables(audit.findings, declared_tokenizer(submission.data))
    audit.stats = summarize(audit.sample())
    if against is not None:
        audit.stats["against"] = compare(audit.sample(), against[0], against[1])
        audit.findings.extend(record_findings(audit.stats["against"]))
    audit.findings.sort(key=lambda f: (-f.severity, f.rule, f.file or "", f.line or 0))
    return audit


def declared_tokenizer(data: dict[str, object]) -> str | None:
    """The tokenizer submission.json names (a top-level ``tokenizer``-like text field), if any."""
    for key, value in data.items():
        if "tokenizer" in key.lower() and isinstance(value, str) and value.strip():
            return value.strip()
    return None


RECORD_RULE = "L23"  # seed and evidence problems, the record's statistics among them


def record_findings(against: dict[str, object]) -> list[Finding]:
    """``--against`` asks whether the folder is a record over those runs: a failed record test is a FAIL, one
    that cannot be run (fewer than two seeds, no nats ratio) a WARN; a passed one is no finding."""
    source = against.get("source")
    test = against.get("record")
    if not isinstance(test, dict):
        note = against.get("note", "no record test")
        return [Finding(RECORD_RULE, Severity.WARN, f"record test against {source} not run: {note}")]
    if test.get("pass") is None:
        note = test.get("note", "not enough seeds")
        return [Finding(RECORD_RULE, Severity.WARN, f"record test against {source} not run: {note}")]
    if test["pass"]:
        return []
    delta, p = against.get("delta_nats"), test.get("p")
    delta_text = f"{delta:+.5f}" if isinstance(delta, float) else "-"
    p_text = f"{p:.3g}" if isinstance(p, float) else "-"
    message = (
        f"not a record against {source}: mean {delta_text} nats against theirs, one-sided Welch p={p_text}; a "
        f"record is at least {test.get('margin_nats')} nats lower at p < {test.get('alpha')}"
    )
    return [Finding(RECORD_RULE, Severity.FAIL, message)]


def _read_logs(audit: FolderAudit) -> None:
    try:
        paths = find_logs(audit.folder)
    except OSError as exc:
        where = Path(exc.filename).name if exc.filename else None
        audit.findings.append(Finding(INPUT_RULE, Severity.WARN, f"logs not read: {_reason(exc)}", where, None))
        paths = []
    for path in paths:
        try:
            audit.runs.append(parse_log(path))
        except (OSError, UnicodeDecodeError) as exc:
            audit.findings.append(
                Finding(
                    INPUT_RULE, Severity.WARN, f"unreadable log: {_reason(exc)}", _relative(audit.folder, path), None
                )
            )
    if not audit.runs:
        audit.findings.append(Finding(INPUT_RULE, Severity.WARN, "no training logs in the folder", None, None))


def _check_script(audit: FolderAudit, folder: Path) -> None:
    path = find_script(folder)
    if path is None:
        _unusable(audit, "no train_gpt.py", "no train_gpt.py: static checks and the shipped size were skipped")
        return
    if _is_empty(path):
        _unusable(audit, f"empty {path.name}", "is empty: expected the submission's training script", path.name)
        return
    try:
        audit.script = unwrap_script(path)
    except FileTooLarge as exc:
        audit.findings.append(Finding("L22", Severity.FAIL, f"{exc}, far over the cap; not audited", path.name, None))
        return
    except OSError as exc:
        _unusable(audit, f"unreadable script: {_reason(exc)}", f"unreadable: {_reason(exc)}", path.name)
        return
    audit.findings.extend(audit.script.problems)
    audit.findings.extend(_symlink_notes(folder, path))
    result = check_units(
        audit.script.units,
        _readme_env(audit, folder),
        _log_hyperparameters(audit.runs),
        data_files(folder, path),
        "".join(run.printed for run in audit.runs),
    )
    audit.findings.extend(result.findings)
    audit.train_calibrations = result.train_calibrations
    audit.config_notes = [
        var.describe() for var in result.config.variables() if var.source in ("README", "log") and var.env is not None
    ]


EMPTY_CHECK_BYTES = 4096  # a script this small is read to see whether it holds only whitespace


def _is_empty(path: Path) -> bool:
    """A regular file of 0 bytes, or of whitespace only; anything unreadable is left to the unwrapper to report."""
    try:
        if not path.is_file() or path.stat().st_size > EMPTY_CHECK_BYTES:
            return False
        return not path.read_bytes().strip()
    except OSError:
        return False


NOT_DATA_SUFFIXES = {".py", ".md", ".json", ".txt", ".log", ".png", ".jpg", ".jpeg", ".svg", ".gif", ".pdf"}
NOT_DATA_SUFFIXES |= {".sh", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".model", ".vocab", ".c", ".cpp", ".h"}
TOKEN_SHARD_MAGIC = (20240520).to_bytes(4, "little")  # the int32 that opens every fineweb token shard


def data_files(folder: Path, script: Path) -> tuple[ShippedFile, ...]:
    """The folder's data files (not code, logs, docs, figures or tokenizer models), one level of subfolders."""
    found = []
    try:
        candidates = [p for p in folder.iterdir()]
        candidates += [c for p in candidates if p.is_dir() and not p.is_symlink() for c in p.iterdir()]
    except OSError:
        return ()
    for path in candidates:
        if (
            path == script
            or not path.is_file()
            or path.suffix.lower() in NOT_DATA_SUFFIXES
            or path.name.startswith(".")
        ):
            continue
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(4)
        except OSError:
            continue
        found.append(ShippedFile(str(path.relative_to(folder)), size, head == TOKEN_SHARD_MAGIC))
    return tuple(found)


def _readme_env(audit: FolderAudit, folder: Path) -> dict[str, str]:
    """The environment of the README's run command; an unreadable README is one finding."""
    readme = folder / "README.md"
    if not (readme.exists() or readme.is_symlink()):
        return {}
    try:
        return readme_environment(read_text_limited(readme))
    except OSError as exc:
        audit.findings.append(Finding(INPUT_RULE, Severity.WARN, f"unreadable: {_reason(exc)}", readme.name, None))
        return {}


def _symlink_notes(folder: Path, script: Path) -> list[Finding]:
    """A script that is a symlink to a file outside the folder is not what the folder ships."""
    if not script.is_symlink():
        return []
    target = script.resolve()
    if target.is_relative_to(folder.resolve()):
        return []
    return [
        Finding(
            INPUT_RULE,
            Severity.WARN,
            f"is a symlink to {target}, outside the submission folder: the audited file may not be the one shipped",
            script.name,
            None,
        )
    ]


def _reason(exc: OSError) -> str:
    """An OSError in words, without repeating the full path (findings name the file)."""
    if exc.strerror:
        return exc.strerror
    return str(exc)


def _relative(folder: Path, path: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return path.name


def _log_hyperparameters(runs: list[RunLog]) -> dict[str, object]:
    """Hyperparameters every log agrees on; a knob the logs disagree on is unknown."""
    merged: dict[str, object] = {}
    for run in runs:
        for key, value in run.hyperparameters.items():
            key = key.lower()
            if key in merged and merged[key] != value:
                merged[key] = UNKNOWN
            else:
                merged.setdefault(key, value)
    return merged


def load_against(text: str) -> tuple[Sample, str]:
    """``--against``: comma-separated bpb values, or another submission folder (its logs' primary seeds)."""
    path = Path(text)
    if path.is_dir():
        runs = []
        for log in find_logs(path):
            try:
                runs.append(parse_log(log))
            except (OSError, UnicodeDecodeError):
                continue
        submission: Submission | None = read_submission(path)[0]
        primary = select_primary(runs, submission)
        if not primary:
            raise GolfcError(f"--against {text}: no scored logs in that folder")
        return Sample(
            tuple(r.val_bpb for r in primary if r.val_bpb is not None), tuple(r.nats_per_bpb for r in primary)
        ), str(path)
    try:
        values = parse_values(text)
    except ValueError:
        raise GolfcError(f"--against {text!r}: expected comma-separated val_bpb values or a folder") from None
    return Sample(tuple(values), tuple(None for _ in values)), text
