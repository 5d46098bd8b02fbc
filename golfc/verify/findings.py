"""What every verify check returns: one :class:`CheckResult` per check, PASS / FAIL / WARN / SKIP with the rule
id of docs/rules.md and the evidence behind the verdict (first differing position and both values, a file and
the time it was read, ...). The report (``DIR/verify/report.json``) lists them under ``"checks"``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("PASS", "FAIL", "WARN", "SKIP")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``name`` (e.g. ``"causality"``), ``rule`` (``"C1"``, ``"L13"``, ...), ``verdict`` (one
    of :data:`VERDICTS`), ``evidence`` (one line a reviewer can act on) and ``details`` (machine-readable)."""

    name: str
    rule: str
    verdict: str
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}: expected one of {', '.join(VERDICTS)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
