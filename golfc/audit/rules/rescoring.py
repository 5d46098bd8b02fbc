"""L5: more than one scoring pass over the same validation tokens inside one scoring procedure.

Separate diagnostic evaluations of different models (pre-quant, roundtrip, sliding) are calls of a scorer
and are not counted; what is flagged is one function that scores the same data in two sibling loops.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import SCORE, Event, overlaps
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import has_words, identifiers

RESCORE_WORDS = {"rescore", "rescoring", "second", "pass2", "two", "loo", "reweight"}


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        passes: dict[int, list[Event]] = {}
        for event in facts.of_kind(SCORE):
            if event.via is None and event.loops:
                passes.setdefault(id(event.loops[0]), []).append(event)
        groups = list(passes.values())
        for index, later in enumerate(groups[1:], start=1):
            earlier = [e for group in groups[:index] for e in group]
            if not any(overlaps(a, b) for a in earlier for b in later):
                continue
            shared = {e.accumulator for e in earlier} & {e.accumulator for e in later} - {None}
            named = any(has_words(name, RESCORE_WORDS) for name in [*identifiers(later[0].loops[0]), facts.name])
            carried = _filled_by(earlier[0].loops[0]) & _read_by(later[0].loops[0])
            severity = Severity.FAIL if shared or named or carried else Severity.WARN
            detail = f" into the same accumulator `{min(shared)}`" if shared else ""
            if carried and not shared:
                detail = f" reading `{min(carried)}`, which the first pass filled from the validation tokens"
            hits.append(
                Hit(
                    "L5",
                    severity,
                    f"{function_label(facts)} scores the same validation tokens in a second "
                    f"pass{detail} (first pass at {context.where(earlier[0].node)}): one committed score per "
                    "token, in order",
                    later[0].node,
                )
            )
    return hits


FILLING_METHODS = {"append", "extend", "update", "add", "setdefault", "__setitem__"}


def _filled_by(loop: ast.AST) -> set[str]:
    """Containers a loop stores into: ``cache[k] = …``, ``table.append(…)``, ``counts.update(…)``."""
    filled: set[str] = set()
    for node in ast.walk(loop):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                filled.add(target.value.id)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FILLING_METHODS
            and isinstance(node.func.value, ast.Name)
        ):
            filled.add(node.func.value.id)
    return filled


def _read_by(loop: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(loop) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
