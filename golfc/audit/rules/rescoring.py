"""L5: more than one scoring pass over the same validation tokens inside one scoring procedure.

Separate diagnostic evaluations of different models (pre-quant, roundtrip, sliding) are calls of a scorer
and are not counted; what is flagged is one function that scores the same data in two sibling loops.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import SCORE, Event, FunctionFacts, bound_names, dotted, overlaps, own_nodes, reads
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, derives, function_label
from golfc.audit.vocabulary import has_words, identifiers, is_val_source

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
            earlier = [
                e for group in groups[:index] for e in group if not _exclusive(context, e.loops[0], later[0].loops[0])
            ]
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
        if not any(hit.rule == "L5" and hit.severity == Severity.FAIL for hit in hits):
            hits += _combined_passes(context, facts) or _whole_val_tables(context, facts)
    return hits


def _exclusive(context: Context, first: ast.AST, second: ast.AST) -> bool:
    """The two loops sit in different branches of one ``if`` (``if slot_steps > 0: … else: …``): one runs."""
    first_chain = [first, *context.program.ancestors(first)]
    second_chain = [second, *context.program.ancestors(second)]
    for branch in first_chain:
        if isinstance(branch, ast.If) and any(branch is other for other in second_chain):
            in_body = [any(n is s for n in _nodes(branch.body)) for s in (first, second)]
            return in_body[0] != in_body[1]
    return False


def _nodes(body: list[ast.stmt]) -> list[ast.AST]:
    return [node for statement in body for node in ast.walk(statement)]


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


# -- passes combined into the reported score (#846) and tables filled from all of val before scoring (#870) --
CLOSURE_ROUNDS = 10


def _returned_closure(scope: ast.AST) -> set[str]:
    """Names the function's return value is computed from, through any number of its assignments."""
    nodes = own_nodes(scope)
    names = {
        n.split(".")[0] for r in nodes if isinstance(r, ast.Return) and r.value is not None for n in reads(r.value)
    }
    assigns = [a for a in nodes if isinstance(a, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and a.value is not None]
    for _ in range(CLOSURE_ROUNDS):
        grown = set(names)
        for assign in assigns:
            if _assigned(assign) & names:
                grown |= {n.split(".")[0] for n in reads(assign.value)}
        if grown == names:
            break
        names = grown
    return names


def _assigned(assign: ast.AST) -> set[str]:
    targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
    found: set[str] = set()
    for target in targets:
        base = target.value if isinstance(target, ast.Subscript) else target
        found |= {n.split(".")[0] for n in bound_names(base)}
    return found


def _results_of(facts: FunctionFacts, call: ast.AST) -> set[str]:
    """The names a call's result is bound to (``a, b = f(...)``), and what is later computed from them."""
    found: set[str] = set()
    for node in own_nodes(facts.scope):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            if any(child is call for child in ast.walk(node.value)):
                found |= _assigned(node)
    return found


def _derived_names(facts: FunctionFacts, seeds: set[str]) -> set[str]:
    """``seeds`` and every local name assigned from them (forward through the function)."""
    names = set(seeds)
    assigns = [
        n
        for n in own_nodes(facts.scope)
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)) and _value_of(n) is not None
    ]
    for _ in range(CLOSURE_ROUNDS):
        grown = set(names)
        for node in assigns:
            if {r.split(".")[0] for r in reads(_value_of(node))} & names:
                grown |= _assigned(node) if not isinstance(node, ast.For) else set(bound_names(node.target))
        if grown == names:
            break
        names = grown
    return names


def _value_of(node: ast.AST) -> ast.AST | None:
    return node.iter if isinstance(node, ast.For) else node.value


def _combined_passes(context: Context, facts: FunctionFacts) -> list[Hit]:
    """Two scorings of the same validation tokens whose results are combined arithmetically into the value the
    function returns (``total = total - first[ci] + second[ci]``): the reported score is a rescored one.
    Separate evaluations reported side by side (a tuple of both, a logged delta) are not combined."""
    scores = sorted((e for e in facts.of_kind(SCORE) if isinstance(e.node, ast.Call)), key=lambda e: e.order)
    returned = _returned_closure(facts.scope)
    if not returned or len(scores) < 2:
        return []
    combining = [
        node
        for node in own_nodes(facts.scope)
        if isinstance(node, (ast.Assign, ast.AugAssign))
        and _assigned(node) & returned
        and not isinstance(node.value, (ast.Tuple, ast.List, ast.Dict))
    ]
    for index, first in enumerate(scores):
        for second in scores[index + 1 :]:
            if not overlaps(first, second):
                continue
            firsts = _derived_names(facts, _results_of(facts, first.node))
            seconds = _derived_names(facts, _results_of(facts, second.node)) - firsts
            if not firsts or not seconds:
                continue
            for node in combining:
                used = {r.split(".")[0] for r in reads(node.value)}
                if isinstance(node, ast.AugAssign):
                    used |= _assigned(node)
                if used & firsts and used & seconds:
                    return [
                        Hit(
                            "L5",
                            Severity.FAIL,
                            f"{function_label(facts)} scores the same validation tokens twice (at "
                            f"{context.where(first.node)} and {context.where(second.node)}) and combines both "
                            f"passes into the score it returns at {context.where(node)}: one committed score per "
                            "token, in order; a second pass may not replace or adjust the first",
                            second.node,
                        )
                    ]
    return []


def _whole_val_tables(context: Context, facts: FunctionFacts) -> list[Hit]:
    """``cache.build_full(tokens)`` on the whole validation array, outside any loop over chunks, and the value the
    function returns computed through that cache: every token is scored with counts that include itself and the
    tokens after it (the 2026-03-27 two-pass / full-rescore ban)."""
    returned = _returned_closure(facts.scope)
    if not returned:
        return []
    val_names = {n for e in facts.events for n in e.val_roots} | set(facts.tainted_params)
    val_names = {n.split(".")[0] for n in val_names}
    loops = [n for n in own_nodes(facts.scope) if isinstance(n, (ast.For, ast.While, ast.comprehension))]
    inside = {id(child) for loop in loops for child in ast.walk(loop)}
    for node in own_nodes(facts.scope):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)) or id(node) in inside:
            continue
        call = node.value
        if not (isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)):
            continue
        table = call.func.value.id
        whole = [a for a in call.args if isinstance(a, (ast.Name, ast.Attribute)) and _is_val(facts, a, val_names)]
        if not whole or table in val_names or not _fills_state(context, call.func.attr):
            continue
        users = [
            n
            for n in own_nodes(facts.scope)
            if isinstance(n, (ast.Assign, ast.AnnAssign))
            and n.value is not None
            and getattr(n, "lineno", 0) > node.lineno
            and _assigned(n) & returned
            and any(isinstance(c, ast.Name) and c.id == table for c in ast.walk(n.value))
        ]
        if users:
            return [
                Hit(
                    "L5",
                    Severity.FAIL,
                    f"{function_label(facts)} fills `{table}` from all the validation tokens "
                    f"(`{ast.unparse(call)[:60]}`) before scoring with it at {context.where(users[0])}: each "
                    "token's probability then counts that token and the ones after it (a full rescore over a cache "
                    "built on all of val); a cache may only hold tokens already scored",
                    users[0],
                    anchors=(node,),
                )
            ]
    return []


def _is_val(facts: FunctionFacts, node: ast.AST, val_names: set[str]) -> bool:
    return derives(facts, node, lambda name: name.split(".")[0] in val_names or is_val_source(name))


def _fills_state(context: Context, method: str) -> bool:
    """A method of the program that stores into its object's tables (``self.t[k] += 1``, ``self.t += counts``,
    ``np.add.at(self.t, keys, 1)``, ``self._add(self.t[o], keys)``)."""
    for function in context.program.functions.get(method, []):
        params = [a.arg for a in function.args.args]
        if not params or params[0] != "self":
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(
                    _on_self(target) and (isinstance(target, ast.Subscript) or isinstance(node, ast.AugAssign))
                    for target in targets
                ):
                    return True
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and any(map(_on_self, node.args)):
                helper = isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
                if node.func.attr in STORING_CALLS or (helper and node.func.attr in context.program.functions):
                    return True
    return False


STORING_CALLS = {"at", "add_", "index_add_", "scatter_add_", "put_"}


def _on_self(node: ast.AST) -> bool:
    while isinstance(node, ast.Subscript):
        node = node.value
    return (dotted(node) or "").startswith("self.")
