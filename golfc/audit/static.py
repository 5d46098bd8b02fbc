"""Static legality checks of an unwrapped program under its effective configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from golfc.audit.config import EffectiveConfig, build_config
from golfc.audit.dataflow import Dataflow
from golfc.audit.findings import INPUT_RULE, Finding, Severity
from golfc.audit.program import Liveness, Program
from golfc.audit.rules import Context, run_rules
from golfc.audit.rules.calibration import train_calibrations
from golfc.audit.rules.paidprefix import ShippedFile
from golfc.audit.unwrap import SourceUnit
from golfc.audit.vocabulary import VAL_WORDS, is_val_path, words


@dataclass
class StaticResult:
    findings: list[Finding]
    config: EffectiveConfig
    # live GPTQ/Hessian calibrations fed from the training shards: (callee, file, line), for the logs' clock
    train_calibrations: tuple[tuple[str, str | None, int | None], ...] = ()


def check_units(
    units: list[SourceUnit],
    readme_env: Mapping[str, str] | None = None,
    log_values: Mapping[str, object] | None = None,
    shipped_files: tuple[ShippedFile, ...] = (),
    logged: str = "",
) -> StaticResult:
    """Parse, configure, solve reachability and dataflow, then run every rule.

    Code nested too deeply for the (recursive) analysis is not judged: one FAIL says it was left unchecked.
    """
    try:
        return _analyse(units, readme_env, log_values, shipped_files, logged)
    except (RecursionError, MemoryError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
        finding = Finding(
            INPUT_RULE,
            Severity.FAIL,
            f"code {reason} for the static legality checks; the script was left unchecked",
            units[0].label if units else None,
            None,
        )
        return StaticResult([finding], build_config([], readme_env or {}, log_values or {}))


def _analyse(
    units: list[SourceUnit],
    readme_env: Mapping[str, str] | None,
    log_values: Mapping[str, object] | None,
    shipped_files: tuple[ShippedFile, ...] = (),
    logged: str = "",
) -> StaticResult:
    program = Program.parse(units)
    config = build_config(program.trees, readme_env or {}, log_values or {})
    liveness = Liveness(program, config, logged)
    knobs = {var.name for var in config.variables() if not _names_val_files(var.name, var.value)}
    flow = Dataflow(program, knobs)
    context = Context(program, liveness, config, flow, shipped_files)
    findings = run_rules(context)
    calibrations = tuple((name, *program.location(node)) for name, node in train_calibrations(context))
    return StaticResult(findings, config, calibrations)


def _names_val_files(name: str, value: object) -> bool:
    """Knobs are settings, not data, except one that says where the validation shards are (``val_files``,
    ``VAL_PATTERN``, or any knob whose value is such a path): reading through it reads validation data."""
    if isinstance(value, str) and is_val_path(value):
        return True
    return bool(words(name) & PATH_WORDS) and bool(words(name) & VAL_WORDS)


PATH_WORDS = {"files", "file", "path", "paths", "pattern", "glob", "dir"}


def check_source(
    text: str,
    label: str = "train_gpt.py",
    readme_env: Mapping[str, str] | None = None,
    log_values: Mapping[str, object] | None = None,
) -> StaticResult:
    """Convenience for one plain source text."""
    return check_units([SourceUnit(label, text, 0)], readme_env, log_values)
