"""L12 and L13: SLOT, an eval-time delta (and logit bias) optimized per batch of windows.

Legal (context-only SLOT): each window gets its own delta ``[bsz, 1, d]``, optimized on the window's context
positions only, then the window's new positions are scored. Illegal: optimizing on the scored positions
themselves (L12), or one delta ``[1, 1, d]`` shared by a batch of overlapping windows, so that window i's
score depends on tokens that only later windows contain (L13).
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import BACKWARD, SCORE, FunctionFacts, Scope, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label, names_in
from golfc.audit.vocabulary import call_name, has_words

OPTIMIZERS = {"SGD", "Adam", "AdamW", "LBFGS", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"}
CONTEXT_WORDS = {"ctx", "context", "prefix", "past", "history"}
BATCH_WORDS = {"bsz", "batch", "windows", "bs", "seqs"}


def slot_tensors(scope: Scope) -> list[tuple[str, ast.Call]]:
    """(name, creating call) of tensors the function creates with gradients and hands to an optimizer.

    Gradients come from ``requires_grad=True``, ``nn.Parameter(...)``, a chained ``.requires_grad_()`` or a
    later ``x.requires_grad_()`` / ``x.requires_grad = True``; the creating call is the one that gives the shape.
    """
    assigned: dict[str, ast.Call] = {}
    created: dict[str, ast.Call] = {}
    marked: set[str] = set()
    optimized: set[str] = set()
    for node in own_nodes(scope):  # not in source order: marks are matched with assignments afterwards
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            shape_call = _unchained(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = shape_call
                    if _creates_trainable(node.value):
                        created[target.id] = shape_call
        name = _marked_trainable(node)
        if name is not None:
            marked.add(name)
        if isinstance(node, ast.Call) and call_name(node) in OPTIMIZERS:
            optimized.update(names_in(node))
    created.update({name: assigned[name] for name in marked if name in assigned and name not in created})
    return [(name, call) for name, call in created.items() if name in optimized]


def is_slot_scope(scope: Scope) -> bool:
    return isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and bool(slot_tensors(scope))


def _creates_trainable(call: ast.Call) -> bool:
    if call_name(call) == "Parameter" or _is_requires_grad_call(call):
        return True
    return any(kw.arg == "requires_grad" and _is_true(kw.value) for kw in call.keywords)


def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_requires_grad_call(call: ast.Call) -> bool:
    """``t.requires_grad_()`` or ``t.requires_grad_(True)`` (not ``(False)``)."""
    return (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "requires_grad_"
        and (not call.args or _is_true(call.args[0]))
        and all(kw.arg != "requires_grad" or _is_true(kw.value) for kw in call.keywords)
    )


def _unchained(call: ast.Call) -> ast.Call:
    """``torch.zeros(1, 1, d).requires_grad_()`` -> ``torch.zeros(1, 1, d)``: the call that gives the shape."""
    while _is_requires_grad_call(call) and isinstance(call.func.value, ast.Call):
        call = call.func.value
    return call


def _marked_trainable(node: ast.AST) -> str | None:
    """The name in a statement ``x.requires_grad_()`` or ``x.requires_grad = True``, else None."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and _is_requires_grad_call(node.value):
        owner = node.value.func.value
        return owner.id if isinstance(owner, ast.Name) else None
    if isinstance(node, ast.Assign) and _is_true(node.value):
        for target in node.targets:
            owner = target.value if isinstance(target, ast.Attribute) and target.attr == "requires_grad" else None
            if isinstance(owner, ast.Name):
                return owner.id
    return None


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        if not is_slot_scope(facts.scope) or not facts.touches_val:
            continue
        hits.extend(_shared_delta(facts))
        hits.extend(_scored_positions(context, facts))
    return hits


def _shared_delta(facts: FunctionFacts) -> list[Hit]:
    hits = []
    batched = any(has_words(name, BATCH_WORDS) for name in names_in(facts.scope))
    for name, call in slot_tensors(facts.scope):
        if not _leading_dimension_is_one(call):
            continue
        if batched:
            hits.append(
                Hit(
                    "L13",
                    Severity.FAIL,
                    f"{function_label(facts)} optimizes `{name}` with a batch "
                    "dimension of 1, shared by a batch of windows: a window's score then depends on tokens "
                    "that only later windows contain; give each window its own delta",
                    call,
                )
            )
        else:
            hits.append(
                Hit(
                    "L13",
                    Severity.WARN,
                    f"{function_label(facts)} optimizes `{name}` with a batch dimension "
                    "of 1: check that it is never shared across windows",
                    call,
                )
            )
    return hits


def _leading_dimension_is_one(call: ast.Call) -> bool:
    if call_name(call) == "Parameter" and call.args and isinstance(call.args[0], ast.Call):
        call = call.args[0]
    if not call.args:
        return False
    first = call.args[0]
    if isinstance(first, (ast.Tuple, ast.List)) and first.elts:
        first = first.elts[0]
    return isinstance(first, ast.Constant) and first.value == 1


def _scored_positions(context: Context, facts: FunctionFacts) -> list[Hit]:
    scored: dict[int, set[str]] = {}
    for score in facts.of_kind(SCORE):
        _selections(facts, score.node, scored)
    hits = []
    for backward in facts.of_kind(BACKWARD):
        reached: dict[int, set[str]] = {}
        _selections(facts, backward.node, reached)
        # Selections in definitions both paths read (``y = windows[:, 1:]``) are shared set-up, not positions.
        fitted = {item for key, items in reached.items() if key not in scored for item in items}
        scored_here = {item for key, items in scored.items() if key not in reached for item in items}
        if any(has_words(item, CONTEXT_WORDS) for item in fitted) or (
            fitted and scored_here and not fitted & scored_here
        ):
            continue  # context-only: fit and score select different positions
        if not fitted:
            hits.append(
                Hit(
                    "L12",
                    Severity.FAIL,
                    f"{function_label(facts)} optimizes its eval-time delta on every "
                    "position of the window, including the positions it then scores (standard SLOT)",
                    backward.node,
                )
            )
        elif fitted & scored_here:
            same = min(fitted & scored_here)
            hits.append(
                Hit(
                    "L12",
                    Severity.FAIL,
                    f"{function_label(facts)} optimizes its eval-time delta on the "
                    f"scored positions (`{same}` selects both): fit on context positions only",
                    backward.node,
                )
            )
        else:
            hits.append(
                Hit(
                    "L12",
                    Severity.WARN,
                    f"{function_label(facts)} optimizes an eval-time delta; found no "
                    "score of its window to confirm the fitted positions exclude the scored ones",
                    backward.node,
                )
            )
    return hits


def _selections(facts: FunctionFacts, node: ast.AST, found: dict[int, set[str]], depth: int = 3) -> None:
    """Slices and masks applied where the value is computed and in the local definitions it reads, by the
    (id of the) expression they appear in."""
    expression = node.value if isinstance(node, (ast.AugAssign, ast.Assign)) else node
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Attribute) and not expression.args:
        expression = expression.func.value  # loss.backward() / nll.sum()
    if id(expression) in found:
        return
    items = {ast.unparse(sub.slice) for sub in ast.walk(expression) if isinstance(sub, ast.Subscript)}
    items |= {name for name in names_in(expression) if has_words(name, {"mask"})}
    found[id(expression)] = items
    if depth == 0:
        return
    for name in names_in(expression):
        for value in facts.definitions.get(name, []):
            _selections(facts, value, found, depth - 1)
