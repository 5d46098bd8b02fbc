"""L6: an oracle min()/argmin over candidate losses, i.e. picking whichever predictor was better on the
realized token. The distribution must be chosen without looking at the target."""

from __future__ import annotations

import ast

from golfc.audit.dataflow import FunctionFacts, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, derives, from_target, function_label
from golfc.audit.vocabulary import LOSS_WORDS, call_name, is_lossy, words

TENSOR_MIN = {"minimum", "fmin"}
CANDIDATE_BUILDERS = {"stack", "cat", "vstack", "hstack"}


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        for node in own_nodes(facts.scope):
            if isinstance(node, ast.Call):
                candidates = _candidate_losses(facts, node)
            elif isinstance(node, ast.IfExp) and _picks_lower(facts, node.test, [node.body, node.orelse]):
                candidates = "a conditional expression picking the lower loss", facts.touches_val
            elif isinstance(node, ast.If) and _replaces_with_lower(facts, node) is not None:
                candidates = f"the lower loss by `{_replaces_with_lower(facts, node)}`", facts.touches_val
            else:
                candidates = None
            if candidates is not None:
                hits.append(_hit(facts, node, candidates))
    return hits


def _names_a_loss(name: str) -> bool:
    return bool(words(name) & LOSS_WORDS)


def _lossy(facts: FunctionFacts, node: ast.AST) -> bool:
    return is_lossy(node) or derives(facts, node, _names_a_loss, depth=2)


def _candidate_losses(facts: FunctionFacts, node: ast.Call) -> tuple[str, bool] | None:
    """(description, is_tensor_op) when ``node`` takes a min over several per-token losses."""
    name = call_name(node)
    if name == "where" and len(node.args) == 3 and _picks_lower(facts, node.args[0], node.args[1:]):
        return f"`{ast.unparse(node.func)}` picking the lower loss", True
    if name in TENSOR_MIN and len(node.args) >= 2 and all(_lossy(facts, a) for a in node.args[:2]):
        return f"`{ast.unparse(node.func)}` of losses", True
    if name == "min" and isinstance(node.func, ast.Name):
        items = (
            node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)) else node.args
        )
        if len(items) >= 2 and all(_lossy(facts, item) for item in items):
            return "`min()` over losses", False
        return None
    if name in ("min", "argmin") and isinstance(node.func, ast.Attribute):
        receiver = node.func.value
        if _stacked(receiver) and _lossy(facts, receiver):
            return f"`.{name}()` over stacked losses", True
        if name == "min" and len(node.args) == 2 and all(_lossy(facts, a) for a in node.args):
            return "`torch.min` of two losses", True
        if name == "argmin" and node.args and _stacked(node.args[0]) and _lossy(facts, node.args[0]):
            return "`argmin` over stacked losses", True
    return None


def _picks_lower(facts: FunctionFacts, test: ast.AST, choices: list[ast.expr]) -> bool:
    """``where(nll_a < nll_b, nll_a, nll_b)`` / ``a if a < b else b``: a min written as a comparison of two
    per-token losses of the target, choosing between losses."""
    return (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
        and all(_lossy(facts, side) and from_target(facts, side) for side in (test.left, test.comparators[0]))
        and all(_lossy(facts, choice) for choice in choices)
    )


def _replaces_with_lower(facts: FunctionFacts, node: ast.If) -> str | None:
    """``if new_nll < old_nll: scored[t] = new_nll``: a per-token score overwritten with a candidate's loss when
    that loss is lower on the realized token, a min() written as a statement (#659)."""
    test = node.test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
    ):
        return None
    sides = (test.left, test.comparators[0])
    if not all(_lossy(facts, side) for side in sides) or not any(from_target(facts, side) for side in sides):
        return None
    lower = sides[0] if isinstance(test.ops[0], (ast.Lt, ast.LtE)) else sides[1]
    for statement in node.body:
        if (
            isinstance(statement, ast.Assign)
            and ast.dump(statement.value) == ast.dump(lower)
            and any(isinstance(t, ast.Subscript) for t in statement.targets)  # one token's entry, not a best-so-far
        ):
            return f"{ast.unparse(statement)[:60]}"
    return None


def _stacked(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and call_name(node) in CANDIDATE_BUILDERS) or isinstance(
        node, (ast.List, ast.Tuple)
    )


def _hit(facts: FunctionFacts, node: ast.Call, candidates: tuple[str, bool]) -> Hit:
    description, tensor_op = candidates
    severity = Severity.FAIL if tensor_op and facts.touches_val else Severity.WARN
    return Hit(
        "L6",
        severity,
        f"{function_label(facts)} takes {description}: choosing the candidate with the lower "
        "loss on the realized token is an oracle (the distribution must not depend on the target)",
        node,
    )
