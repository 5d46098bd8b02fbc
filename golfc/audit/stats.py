"""Seed statistics and the record tests (scipy).

Record rule: beat the other submission by at least 0.005 nats at p < 0.01 (one-sided Welch t-test).
Progression rule (final leaderboard): a one-sided test of any improvement at p < 0.25. bpb is converted to
nats with the audited runs' own ``val_loss / val_bpb`` ratio (tokens per byte × ln 2), applied to both sides so
that submissions with different tokenizers are compared on the same scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RECORD_MARGIN_NATS = 0.005
RECORD_ALPHA = 0.01
PROGRESSION_ALPHA = 0.25


@dataclass(frozen=True)
class Sample:
    """Per-seed scores of one submission."""

    bpb: tuple[float, ...]
    nats_per_bpb: tuple[float | None, ...]

    @property
    def ratio(self) -> float | None:
        known = [r for r in self.nats_per_bpb if r]
        return sum(known) / len(known) if known else None

    def nats(self, fallback_ratio: float | None = None) -> list[float] | None:
        values = []
        for bpb, ratio in zip(self.bpb, self.nats_per_bpb):
            use = ratio or fallback_ratio
            if use is None:
                return None
            values.append(bpb * use)
        return values


def _mean(values: list[float] | tuple[float, ...]) -> float:
    return sum(values) / len(values)


def _std(values: list[float] | tuple[float, ...]) -> float | None:
    if len(values) < 2:
        return None
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(sample: Sample) -> dict[str, object]:
    if not sample.bpb:
        return {"n": 0}
    summary: dict[str, object] = {
        "n": len(sample.bpb),
        "mean_bpb": round(_mean(sample.bpb), 8),
        "std_bpb": _round(_std(sample.bpb)),
    }
    nats = sample.nats()
    if nats is not None:
        summary.update(
            mean_nats=round(_mean(nats), 8), std_nats=_round(_std(nats)), nats_per_bpb=round(sample.ratio or 0.0, 8)
        )
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 8)


def one_sided_improvement(ours: list[float], theirs: list[float], margin: float) -> tuple[float, float] | None:
    """(t, p) for H1: mean(ours) < mean(theirs) - margin. Welch; a one-sample test when theirs is one value."""
    if len(ours) < 2:
        return None
    from scipy import stats as scipy_stats  # imported here: scipy.stats costs seconds, and only this test needs it

    if len(theirs) == 1:
        result = scipy_stats.ttest_1samp(ours, theirs[0] - margin, alternative="less")
    else:
        result = scipy_stats.ttest_ind([v + margin for v in ours], theirs, equal_var=False, alternative="less")
    t, p = float(result.statistic), float(result.pvalue)
    if math.isnan(p):
        return None
    return t, p


def compare(ours: Sample, theirs: Sample, source: str) -> dict[str, object]:
    """Record and progression tests of ``ours`` against ``theirs``, in nats."""
    ratio = ours.ratio or theirs.ratio
    our_nats = None if ratio is None else [b * ratio for b in ours.bpb]
    their_nats = None if ratio is None else [b * ratio for b in theirs.bpb]
    report: dict[str, object] = {
        "source": source,
        "n": len(theirs.bpb),
        "mean_bpb": round(_mean(theirs.bpb), 8),
        "nats_per_bpb": None if ratio is None else round(ratio, 8),
    }
    if our_nats is None or their_nats is None or not our_nats:
        report["note"] = "no val_loss/val_bpb ratio to convert bpb to nats"
        return report
    report["mean_nats"] = round(_mean(their_nats), 8)
    report["delta_nats"] = round(_mean(our_nats) - _mean(their_nats), 8)
    for key, margin, alpha in (("record", RECORD_MARGIN_NATS, RECORD_ALPHA), ("progression", 0.0, PROGRESSION_ALPHA)):
        test = one_sided_improvement(our_nats, their_nats, margin)
        if test is None:
            report[key] = {
                "margin_nats": margin,
                "alpha": alpha,
                "t": None,
                "p": None,
                "pass": None,
                "note": "needs at least two seeds of ours",
            }
        else:
            report[key] = {
                "margin_nats": margin,
                "alpha": alpha,
                "t": round(test[0], 4),
                "p": test[1],
                "pass": test[1] < alpha,
            }
    return report


def parse_values(text: str) -> list[float]:
    """``1.0611,1.0614`` → [1.0611, 1.0614]; raises ValueError on anything else (also nan, inf, 0 or less)."""
    values = [float(part) for part in text.replace(" ", "").split(",") if part]
    if not values:
        raise ValueError("no numbers")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError("val_bpb values are finite and positive")
    return values
