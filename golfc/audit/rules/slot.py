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
from golfc.audit.program import Program
from golfc.audit.rules.common import Context, Hit, function_label, names_in
from golfc.audit.vocabulary import call_name, has_words

OPTIMIZERS = {"SGD", "Adam", "AdamW", "LBFGS", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"}
CONTEXT_WORDS = {"ctx", "context", "prefix", "past", "history"}
BATCH_WORDS = {"bsz", "batch", "windows", "bs", "seqs"}


def slot_tensors(scope: Scope, program: Program | None = None) -> list[tuple[str, ast.Call]]:
    """Eval-time tensors the function optimizes: its own (:func:`own_slot_tensors`) and the delta of a small
    module it builds and hands to an optimizer (``slot = SlotDelta(d)``; ``AdamW(slot.parameters())``, with
    ``self.delta = nn.Parameter(torch.zeros(1, 1, d))`` in the class)."""
    found = own_slot_tensors(scope)
    if program is None or not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return found
    classes = delta_classes(program)
    optimized = _optimized_names(scope)
    for node in own_nodes(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and call_name(node.value) in classes:
            for target in node.targets:
                if isinstance(target, ast.Name) and any(
                    name == target.id or name.startswith(target.id + ".") for name in optimized
                ):
                    found += [(f"{target.id}.{attr}", call) for attr, call in classes[call_name(node.value)]]
    return found


def _optimized_names(scope: Scope) -> set[str]:
    return {
        name
        for node in own_nodes(scope)
        if isinstance(node, ast.Call) and call_name(node) in OPTIMIZERS
        for name in names_in(node)
    }


def delta_classes(program: Program) -> dict[str, list[tuple[str, ast.Call]]]:
    """Classes whose only trainable tensors are deltas without a batch dimension (``self.delta =
    nn.Parameter(torch.zeros(1, 1, d))``): SLOT modules, not LoRA adapters (whose tensors have a batch or rank
    dimension first)."""
    cached = getattr(program, "_delta_classes", None)
    if cached is not None:
        return cached
    classes: dict[str, list[tuple[str, ast.Call]]] = {}
    for tree in program.trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                tensors = _class_tensors(node)
                if tensors and all(_delta_shape(call, {}) is not None for _, call in tensors):
                    classes[node.name] = tensors
    program._delta_classes = classes  # type: ignore[attr-defined]  # computed once per program
    return classes


def _class_tensors(node: ast.ClassDef) -> list[tuple[str, ast.Call]]:
    """``self.NAME = nn.Parameter(...)`` / a ``requires_grad=True`` factory in the class's methods."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Assign) and isinstance(child.value, ast.Call) and _creates_trainable(child.value):
            for target in child.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    found.append((target.attr, _unchained(child.value)))
    return found


def own_slot_tensors(scope: Scope) -> list[tuple[str, ast.Call]]:
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


def is_slot_scope(scope: Scope, program: Program | None = None) -> bool:
    return isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and bool(slot_tensors(scope, program))


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
        if not is_slot_scope(facts.scope, context.program) or not facts.touches_val:
            continue
        hits.extend(_shared_delta(facts, context.program))
        hits.extend(_scored_positions(context, facts))
    return hits


def _shared_delta(facts: FunctionFacts, program: Program) -> list[Hit]:
    hits = []
    batched = any(has_words(name, BATCH_WORDS) for name in names_in(facts.scope))
    local = _local_values(facts.scope)
    for name, call in slot_tensors(facts.scope, program):
        shape = _delta_shape(call, local)
        if shape == "leading-1":
            what = "with a batch dimension of 1"
        elif shape == "1-d":
            what = "with no batch dimension (one value or vector broadcast over every window)"
        else:
            continue
        if batched:
            hits.append(
                Hit(
                    "L13",
                    Severity.FAIL,
                    f"{function_label(facts)} optimizes `{name}` {what}, shared by a batch of windows: a "
                    "window's score then depends on tokens that only later windows contain; give each window "
                    "its own delta",
                    call,
                )
            )
        else:
            hits.append(
                Hit(
                    "L13",
                    Severity.WARN,
                    f"{function_label(facts)} optimizes `{name}` {what}: check that it is never shared across windows",
                    call,
                )
            )
    return hits


LIKE_FACTORIES = {"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"}
DATA_FACTORIES = {"tensor", "as_tensor", "from_numpy", "new_tensor"}
SIZE_FIRST_FACTORIES = {"full", "new_full"}  # full(size, fill_value): only the first argument is the size


def _local_values(scope: Scope) -> dict[str, ast.expr]:
    """Names the function assigns exactly once, with the expression they get (``n = 1``, ``shape = (1, 1, d)``).

    Not ``FunctionFacts.definitions``: that records each name of ``a, b = x, y`` with the whole right-hand side.
    """
    values: dict[str, ast.expr] = {}
    reassigned: set[str] = set()
    for node in own_nodes(scope):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                if target.id in values:
                    reassigned.add(target.id)
                values[target.id] = node.value
    return {name: value for name, value in values.items() if name not in reassigned}


def _resolve(node: ast.expr, local: dict[str, ast.expr]) -> ast.expr:
    """Follow a local name to the one expression it was assigned (a few hops at most)."""
    for _ in range(3):
        if not (isinstance(node, ast.Name) and node.id in local):
            break
        node = local[node.id]
    return node


def _delta_shape(call: ast.Call, local: dict[str, ast.expr]) -> str | None:
    """Classify a delta's shape: "leading-1" (first dimension 1), "1-d" (no more than one dimension), or None
    when it has a batch dimension or the code does not tell.

    Reads the size from ``zeros(1, 1, d)``, ``zeros((1, 1, d))``, ``zeros(*shape)`` / ``zeros(shape)`` with a
    local ``shape = (1, 1, d)``, a leading local ``n = 1``, ``full((1, d), 0.0)``, ``new_zeros(...)``,
    ``nn.Parameter(<any of these>)`` and ``zeros_like(h[:1])`` (a leading slice of length 1).
    """
    if call_name(call) == "Parameter" and call.args and isinstance(call.args[0], ast.Call):
        call = call.args[0]
    name = call_name(call)
    if name in DATA_FACTORIES:  # tensor(0.0), tensor([0.0, 0.0]): values, not a shape; literal ones are unbatched
        return "1-d" if call.args and _is_literal_values(call.args[0]) else None
    if name in LIKE_FACTORIES:
        return "leading-1" if call.args and _leading_slice_of_one(_resolve(call.args[0], local)) else None
    args = call.args[:1] if name in SIZE_FIRST_FACTORIES else call.args
    if len(args) == 1:
        only = args[0].value if isinstance(args[0], ast.Starred) else args[0]
        only = _resolve(only, local)
        if isinstance(only, (ast.Tuple, ast.List)):
            args = only.elts
        elif not _is_single_size(only):
            return None  # a name or call that may hold a whole shape: unknown
    if not args:
        return None
    if len(args) == 1:
        return "1-d"
    first = _resolve(args[0], local)
    return "leading-1" if isinstance(first, ast.Constant) and first.value == 1 else None


def _is_literal_values(node: ast.expr) -> bool:
    """A number or a flat list/tuple of numbers: a 0-d or 1-d tensor's values."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


def _is_single_size(node: ast.expr) -> bool:
    """An expression that is one dimension's size: a number, ``x.shape[-1]``, ``x.size(-1)``, arithmetic."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, (ast.Constant, ast.UnaryOp))  # x.shape[-1], not x.shape[1:]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size":
        return bool(node.args)  # x.size(-1) is an int; x.size() is a whole shape
    return isinstance(node, ast.BinOp)


def _leading_slice_of_one(node: ast.expr) -> bool:
    """``h[:1]``, ``h[0:1]``, ``h[:1, :1]``: a tensor whose first dimension is cut to length 1."""
    if not isinstance(node, ast.Subscript):
        return False
    first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
    if not isinstance(first, ast.Slice) or first.step is not None:
        return False
    lower_is_zero = first.lower is None or (isinstance(first.lower, ast.Constant) and first.lower.value == 0)
    return lower_is_zero and isinstance(first.upper, ast.Constant) and first.upper.value == 1


def _scored_positions(context: Context, facts: FunctionFacts) -> list[Hit]:
    scored: dict[int, set[str]] = {}
    for score in facts.of_kind(SCORE):
        _selections(facts, score.node, scored)
    hits = []
    for backward in facts.of_kind(BACKWARD):
        if backward.via is not None and not is_slot_scope(backward.via, context.program):
            continue  # a callee that trains the model (pre-quant or score-first TTT): the TTT rules judge it
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
    masks = {name for name in names_in(expression) if has_words(name, {"mask"})}
    items |= masks
    items |= _written_positions(facts, masks)
    found[id(expression)] = items
    if depth == 0:
        return
    for name in names_in(expression):
        for value in facts.definitions.get(name, []):
            _selections(facts, value, found, depth - 1)


def _written_positions(facts: FunctionFacts, masks: set[str]) -> set[str]:
    """``mask[i, s:wlen] = 1.0``: the positions a mask built by item assignment selects (its written slices), so
    that a mask over the scored slice is seen to select the scored positions (#1229)."""
    if not masks:
        return set()
    return {
        ast.unparse(target.slice)
        for node in own_nodes(facts.scope)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id in masks
    }
