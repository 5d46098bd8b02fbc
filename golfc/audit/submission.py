"""``submission.json``: the claims a folder makes about its runs."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from golfc.audit.findings import INPUT_RULE, Finding, Severity
from golfc.audit.reading import read_limited


@dataclass(frozen=True)
class SeedClaim:
    """One entry of a ``seed_results`` mapping (top level or nested, e.g. ``compliance_rerun``)."""

    seed: int
    where: str  # JSON path of the mapping: "seed_results", "compliance_rerun.seed_results"
    val_bpb: float | None
    val_loss: float | None
    artifact_bytes: int | None


NUMERIC_FIELDS = ("val_bpb", "val_loss", "bytes_total", "bytes_code")
SEED_FIELDS = ("val_bpb", "val_loss", "artifact_bytes")


@dataclass
class Submission:
    path: Path
    data: dict[str, object]
    lines: list[str] = field(default_factory=list)

    def number(self, key: str) -> float | None:
        return _float(self.data.get(key))

    def top_level_line(self, key: str) -> int | None:
        """The line of a top-level field: a ``"key":`` at brace depth 1 (braces inside strings are rare enough
        in submission.json to be ignored); else the first mention of the key."""
        pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
        depth = 0
        for number, line in enumerate(self.lines, 1):
            match = pattern.search(line)
            if match and depth + line[: match.start()].count("{") - line[: match.start()].count("}") == 1:
                return number
            depth += line.count("{") - line.count("}")
        return self.line_of(key)

    def line_of(self, *keys: str) -> int | None:
        """The line of ``"k1"``, then the first ``"k2"`` after it, …: where a (nested) field is written."""
        line = None
        start = 0
        for key in keys:
            quoted = json.dumps(key)
            line = next((i for i in range(start, len(self.lines)) if quoted in self.lines[i]), None)
            if line is None:
                return None
            start = line
        return None if line is None else line + 1

    @property
    def non_record(self) -> bool:
        """submission.json says the run is not a record attempt (``"track": "non-record-16mb"``,
        ``"submission_type": "non_record"``): its clock is not the record's."""
        labels = [self.data.get(key) for key in ("track", "submission_type", "type", "category")]
        return any(isinstance(label, str) and "non" in re.split(r"[^a-z]+", label.lower()) for label in labels)

    def seed_claims(self) -> list[SeedClaim]:
        return list(_claims(self.data, ""))

    @property
    def top_level_claims(self) -> list[SeedClaim]:
        return [claim for claim in self.seed_claims() if claim.where == "seed_results"]


def _claims(node: object, prefix: str):
    """A SeedClaim for every ``seed_results`` entry whose key is a seed number."""
    for path, seed, result in _seed_results(node, prefix):
        if seed.lstrip("-").isdigit():
            yield SeedClaim(
                int(seed),
                path,
                _float(result.get("val_bpb")),
                _float(result.get("val_loss")),
                _int(result.get("artifact_bytes")),
            )


def _float(value: object) -> float | None:
    """A JSON number, or a number written as a string (``"0.9"``); None for anything else or non-finite."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _int(value: object) -> int | None:
    """A JSON integer, or an integer written as a string (``"15863489"``)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _type_problem(value: object) -> str | None:
    """Why a numeric field's value is not a plain finite JSON number, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        return "is a string, expected a number" + ("" if _float(value) is not None else " (and not numeric)")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is a {type(value).__name__}, expected a number"
    if _float(value) is None:
        return "is not a finite number"
    return None


def field_type_problems(submission: Submission) -> list[Finding]:
    """A WARN for every claimed number written with the wrong type: such a claim is never skipped silently."""
    problems = []
    checks: list[tuple[str, tuple[str, ...], object]] = [
        (key, (key,), submission.data[key]) for key in NUMERIC_FIELDS if key in submission.data
    ]
    for where, seed, result in _seed_results(submission.data, ""):
        checks += [
            (f"{where}[{seed}].{key}", (*where.split("."), seed, key), result[key])
            for key in SEED_FIELDS
            if key in result
        ]
    for label, keys, value in checks:
        reason = _type_problem(value)
        if reason is not None:
            problems.append(
                Finding(INPUT_RULE, Severity.WARN, f"{label} {reason}", submission.path.name, submission.line_of(*keys))
            )
    return problems


def _seed_results(node: object, prefix: str):
    """(path, seed, result) of every ``seed_results`` entry, top level or nested."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        path = f"{prefix}{key}"
        if key == "seed_results" and isinstance(value, dict):
            for seed, result in value.items():
                if isinstance(result, dict):
                    yield path, str(seed), result
        elif isinstance(value, dict):
            yield from _seed_results(value, f"{path}.")


def read_submission(folder: Path) -> tuple[Submission | None, list[Finding]]:
    path = folder / "submission.json"
    if not (path.exists() or path.is_symlink()):
        return None, [Finding(INPUT_RULE, Severity.WARN, "missing: nothing to cross-check", path.name, None)]
    try:
        text = read_limited(path).decode("utf-8-sig")
    except OSError as exc:
        return None, [Finding(INPUT_RULE, Severity.WARN, f"unreadable: {exc.strerror or exc}", path.name, None)]
    except UnicodeDecodeError as exc:
        return None, [Finding(INPUT_RULE, Severity.WARN, f"unreadable: not UTF-8 ({exc.reason})", path.name, None)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Finding(INPUT_RULE, Severity.WARN, f"invalid JSON: {exc.msg}", path.name, exc.lineno)]
    except (ValueError, RecursionError, MemoryError) as exc:  # huge integers, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        return None, [Finding(INPUT_RULE, Severity.WARN, f"invalid JSON: {reason}", path.name, None)]
    if not isinstance(data, dict):
        return None, [Finding(INPUT_RULE, Severity.WARN, "not a JSON object", path.name, 1)]
    submission = Submission(path, data, text.splitlines())
    return submission, field_type_problems(submission)


def decimals_of(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 8


def agrees(claimed: float, measured: float, slack: float = 0.0) -> bool:
    """``claimed`` equals ``measured`` to the precision ``claimed`` is written with."""
    return abs(claimed - measured) <= 0.5 * 10 ** -decimals_of(claimed) + slack + 1e-12
