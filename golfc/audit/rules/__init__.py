"""Static legality rules. Each module checks one family of leaks (docs/rules.md) and returns hits;
:func:`run_rules` places them and turns hits in unreachable code into INFO notes."""

from __future__ import annotations

from golfc.audit.findings import Finding, Severity
from golfc.audit.rules import (
    bytecount,
    bytemix,
    calibration,
    mixer,
    network,
    ngram,
    oracle,
    paidprefix,
    rescoring,
    slot,
    smear,
    traindata,
    ttt,
)
from golfc.audit.rules.common import Context, Hit

RULE_MODULES = (
    ttt, rescoring, oracle, ngram, slot, calibration, network, smear, bytecount, bytemix, paidprefix, traindata, mixer
)

__all__ = ["Context", "Hit", "run_rules"]


def run_rules(context: Context) -> list[Finding]:
    """Every rule's hits as findings, de-duplicated, FAILs first."""
    findings: list[Finding] = []
    seen: set[tuple[str, str | None, int | None, str]] = set()
    for module in RULE_MODULES:
        for hit in module.check(context):
            finding = _place(context, hit)
            key = (finding.rule, finding.file, finding.line, finding.message)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    return sorted(findings, key=lambda f: (-f.severity, f.rule, f.file or "", f.line or 0))


def _place(context: Context, hit: Hit) -> Finding:
    file, line = context.program.location(hit.node)
    severity, message = hit.severity, hit.message
    for anchor in (hit.node, *hit.anchors):
        reason = context.liveness.why_dead(anchor)
        if reason is not None and severity > Severity.INFO:
            severity = Severity.INFO
            message = f"not live ({reason}): {message}"
            break
    return Finding(hit.rule, severity, message, file, line)
