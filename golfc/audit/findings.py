"""What an audit reports: findings with a rule id, a severity and a place."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """How sure the audit is that something breaks the rules; the verdict is the worst one."""

    INFO = 0  # a note: dead code, a legal pattern worth knowing about, a figure that was not checked
    WARN = 1  # suspicious: a reviewer should look
    FAIL = 2  # certain: the submission breaks a rule

    @property
    def verdict(self) -> str:
        return {Severity.INFO: "PASS", Severity.WARN: "WARN", Severity.FAIL: "FAIL"}[self]


# Rule ids beyond L1..L23 (every id is explained in docs/rules.md and by `golfc audit --explain`).
NETWORK_RULE = "NET"  # README: no external downloads or network calls during evaluation
INPUT_RULE = "INPUT"  # a part of the folder that could not be read


@dataclass(frozen=True)
class Finding:
    """One observation about a submission."""

    rule: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        if self.file is None:
            return "-"
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.name,
            "message": self.message,
            "file": self.file,
            "line": self.line,
        }


def verdict_of(findings: list[Finding]) -> str:
    """PASS, WARN or FAIL: the worst severity among ``findings``."""
    worst = max((f.severity for f in findings), default=Severity.INFO)
    return worst.verdict
