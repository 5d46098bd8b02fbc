"""L16: train/validation overlap from the data preparation a submission ships.

The canonical split takes the first 50,000 documents of ``docs_selected.jsonl`` as validation and the rest as
training. A preparation script that starts the training shards after fewer documents (the
``--val-docs=10000`` default of ``prepare_caseops_data.py``, issue #2127) puts validation documents into the
training shards. From a folder the audit reads the preparation files it ships (``*.py`` other than
``train_gpt.py``, ``*.sh``): a validation-document count below 50,000 — an argparse default, a
``NUM_VAL_DOCS``-style constant, or a ``--val-docs N`` on a command line — is an L16 WARN naming the file
and line. It stays a warning: records that trained on the canonical shards (the published CaseOps dataset
is split correctly) are unaffected by the script's default, and the overlap itself needs the shards (hash
every training document against the canonical val); no organizer has ruled on #2127.
"""

from __future__ import annotations

import re
from pathlib import Path

from golfc.audit.findings import Finding, Severity
from golfc.audit.reading import read_text_limited

CANONICAL_VAL_DOCS = 50_000
RULE = "L16"
_NUMBER = r"(\d[\d_]*)"
PATTERNS = (
    re.compile(rf"""["']--val[-_]docs["'][^)]*?\bdefault\s*=\s*{_NUMBER}""", re.S),
    re.compile(rf"\b(?:NUM_)?VAL_DOCS\b\s*(?::\s*int\s*)?=\s*{_NUMBER}", re.I),
    re.compile(rf"--val[-_]docs(?:=|\s+){_NUMBER}"),
)
MAX_FILES = 20


def check_prep(folder: Path) -> list[Finding]:
    findings = []
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_prep(p))[:MAX_FILES]
    for path in files:
        try:
            text = read_text_limited(path)
        except (OSError, ValueError):
            continue
        for pattern in PATTERNS:
            for match in pattern.finditer(text):
                docs = int(match.group(1).replace("_", ""))
                if docs < CANONICAL_VAL_DOCS:
                    line = text.count("\n", 0, match.start(1)) + 1
                    findings.append(_finding(path.name, line, docs))
    return _one_per_line(findings)


def _is_prep(path: Path) -> bool:
    return (path.suffix == ".py" and path.name != "train_gpt.py") or path.suffix == ".sh"


def _finding(name: str, line: int, docs: int) -> Finding:
    return Finding(
        RULE,
        Severity.WARN,
        f"the shipped data preparation takes {docs:,} validation documents where the canonical split takes "
        f"{CANONICAL_VAL_DOCS:,}: training shards built after document {docs:,} hold validation documents "
        "(the --val-docs=10000 default of issue #2127) unless the run used the canonical shards; say which",
        name,
        line,
    )


def _one_per_line(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str | None, int | None]] = set()
    kept = []
    for finding in findings:
        if (finding.file, finding.line) not in seen:
            seen.add((finding.file, finding.line))
            kept.append(finding)
    return kept
