"""What every rule sees, and small helpers over the dataflow facts."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from golfc.audit.config import EffectiveConfig
from golfc.audit.dataflow import Dataflow, FunctionFacts
from golfc.audit.findings import Severity
from golfc.audit.program import Liveness, Program
from golfc.audit.vocabulary import BPB_TABLE_WORDS, identifiers, is_target_name, words

if TYPE_CHECKING:
    from golfc.audit.rules.paidprefix import ShippedFile


@dataclass
class Context:
    program: Program
    liveness: Liveness
    config: EffectiveConfig
    flow: Dataflow
    shipped_files: tuple[ShippedFile, ...] = ()  # data files of the submission folder (L21)

    def where(self, node: ast.AST) -> str:
        file, line = self.program.location(node)
        return f"{file}:{line}"


@dataclass(frozen=True)
class Hit:
    """A rule's raw observation; ``anchors`` must be live too for it to count."""

    rule: str
    severity: Severity
    message: str
    node: ast.AST
    anchors: tuple[ast.AST, ...] = ()


def names_in(node: ast.AST) -> list[str]:
    return identifiers(node)


def derives(facts: FunctionFacts, node: ast.AST, test: Callable[[str], bool], depth: int = 3) -> bool:
    """``test(identifier)`` holds for a name in ``node`` or, through local assignments, in what it came from."""
    return any(_name_derives(facts, name, test, depth) for name in names_in(node))


def _name_derives(facts: FunctionFacts, name: str, test: Callable[[str], bool], depth: int) -> bool:
    """Memoized per function: rules ask this of every node, and chains of definitions fan out quickly."""
    key = (name, test, depth)
    cached = facts.derivations.get(key)
    if cached is None:
        facts.derivations[key] = False  # a cycle through this name adds nothing
        cached = test(name) or (
            depth > 0 and any(derives(facts, value, test, depth - 1) for value in facts.definitions.get(name, []))
        )
        facts.derivations[key] = cached
    return cached


def from_target(facts: FunctionFacts, node: ast.AST) -> bool:
    return derives(facts, node, is_target_name)


def is_bpb_table(node: ast.AST) -> bool:
    """``base_bytes[y]`` / ``has_leading_space[y]``: byte accounting, which legitimately reads the target."""
    return any(words(name) & BPB_TABLE_WORDS for name in names_in(node))


def function_label(facts: FunctionFacts) -> str:
    return "module level" if facts.name == "<module>" else f"`{facts.name}`"


def val_severity(facts: FunctionFacts) -> Severity:
    """FAIL where the function handles validation data, WARN elsewhere."""
    return Severity.FAIL if facts.touches_val else Severity.WARN
