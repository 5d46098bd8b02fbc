"""``submission.json``: the claims a folder makes about its runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from golfc.audit.findings import INPUT_RULE, Finding, Severity


@dataclass(frozen=True)
class SeedClaim:
    """One entry of a ``seed_results`` mapping (top level or nested, e.g. ``compliance_rerun``)."""

    seed: int
    where: str  # JSON path of the mapping: "seed_results", "compliance_rerun.seed_results"
    val_bpb: float | None
    val_loss: float | None
    artifact_bytes: int | None


@dataclass
class Submission:
    path: Path
    data: dict[str, object]

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def seed_claims(self) -> list[SeedClaim]:
        return list(_claims(self.data, ""))

    @property
    def top_level_claims(self) -> list[SeedClaim]:
        return [claim for claim in self.seed_claims() if claim.where == "seed_results"]


def _claims(node: object, prefix: str):
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        path = f"{prefix}{key}"
        if key == "seed_results" and isinstance(value, dict):
            for seed, result in value.items():
                if str(seed).lstrip("-").isdigit() and isinstance(result, dict):
                    yield SeedClaim(
                        int(seed),
                        path,
                        _float(result.get("val_bpb")),
                        _float(result.get("val_loss")),
                        _int(result.get("artifact_bytes")),
                    )
        elif isinstance(value, dict):
            yield from _claims(value, f"{path}.")


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_submission(folder: Path) -> tuple[Submission | None, list[Finding]]:
    path = folder / "submission.json"
    if not path.is_file():
        return None, [Finding(INPUT_RULE, Severity.WARN, "missing: nothing to cross-check", path.name, None)]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Finding(INPUT_RULE, Severity.WARN, f"unreadable: {exc}", path.name, None)]
    except json.JSONDecodeError as exc:
        return None, [Finding(INPUT_RULE, Severity.WARN, f"invalid JSON: {exc.msg}", path.name, exc.lineno)]
    if not isinstance(data, dict):
        return None, [Finding(INPUT_RULE, Severity.WARN, "not a JSON object", path.name, 1)]
    return Submission(path, data), []


def decimals_of(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 8


def agrees(claimed: float, measured: float, slack: float = 0.0) -> bool:
    """``claimed`` equals ``measured`` to the precision ``claimed`` is written with."""
    return abs(claimed - measured) <= 0.5 * 10 ** -decimals_of(claimed) + slack + 1e-12
