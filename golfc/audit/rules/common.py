"""What every rule sees, and small helpers over the dataflow facts."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from golfc.audit.config import EffectiveConfig
from golfc.audit.dataflow import Dataflow, FunctionFacts
from golfc.audit.findings import Severity
from golfc.audit.program import Liveness, Program
from golfc.audit.vocabulary import BPB_TABLE_WORDS, is_target_name, words


@dataclass
class Context:
    program: Program
    liveness: Liveness
    config: EffectiveConfig
    flow: Dataflow

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
    return [child.id for child in ast.walk(node) if isinstance(child, ast.Name)] + [
        child.attr for child in ast.walk(node) if isinstance(child, ast.Attribute)
    ]


def derives(facts: FunctionFacts, node: ast.AST, test, depth: int = 3) -> bool:
    """``test(identifier)`` holds for a name in ``node`` or, through local assignments, in what it came from."""
    for name in names_in(node):
        if test(name):
            return True
        if depth > 0:
            for value in facts.definitions.get(name, []):
                if value is not node and derives(facts, value, test, depth - 1):
                    return True
    return False


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
