"""L21: validation data shipped inside the submission and read by the program (a "paid prefix").

The folder's data files (anything that is not code, a log, the README, submission.json, a tokenizer model or a
figure) are matched against the string constants of the program. A file the program names is FAIL when it is
validation data by its name (``val_prefix.xz``, ``fineweb_val_…``) or by its content (a token shard: the
fineweb header), or when the code that names it handles validation data; WARN when it is read elsewhere, since
a reviewer should see what it holds.

The same leak is read from the scorer alone, whatever the folder holds: a per-token loss multiplied by (or set
to zero under) a mask of positions where the target equals a sequence that comes neither from the model nor
from the target itself (``loss *= ~(prefix[lo:hi] == y)``). Such a sequence is a copy of the validation
targets carried by the submission: every position it matches is scored as free (the paid prefix of PR #168).
A comparison with the model's own prediction (``logits.argmax(-1) == y``, an accuracy) or with a constant
(``y == pad_id``) is not that.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from golfc.audit.dataflow import FunctionFacts, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, derives, function_label
from golfc.audit.vocabulary import VAL_WORDS, call_name, identifiers, is_lossy, is_target_name, words

INPUT_WORDS = VAL_WORDS | {"x", "input", "inputs", "ids", "prev", "context", "ctx"}
MODEL_WORDS = {"logits", "logit", "pred", "preds", "prediction", "predictions", "argmax", "output", "outputs", "probs"}


@dataclass(frozen=True)
class ShippedFile:
    """A data file of the submission folder: its name there, its size and whether it starts like a token shard."""

    name: str
    size: int
    token_shard: bool = False

    @property
    def named_val(self) -> bool:
        stem = self.name.rsplit("/", 1)[-1]
        return "fineweb_val" in stem or bool(words(stem.split(".")[0]) & VAL_WORDS)


def check(context: Context) -> list[Hit]:
    hits = _free_matches(context)
    if not context.shipped_files:
        return hits
    module_names, bound_constants = _module_string_names(context)
    for facts in context.flow.all_facts():
        for node in own_nodes(facts.scope):
            if id(node) in bound_constants:
                continue  # ``PREFIX = "val_prefix.xz"``: judged where PREFIX is read
            shipped = _named_file(context, node, module_names)
            if shipped is None:
                continue
            val_code = facts.touches_val and facts.name != "<module>"
            what = _what_it_is(shipped)
            if shipped.named_val or shipped.token_shard or val_code:
                where = f"read by {function_label(facts)}, which handles validation data" if val_code else "read"
                hits.append(
                    Hit(
                        "L21",
                        Severity.FAIL,
                        f"the folder ships `{shipped.name}` ({shipped.size:,} bytes{what}), {where}: validation "
                        "data carried in the submission is a paid prefix",
                        node,
                    )
                )
            else:
                hits.append(
                    Hit(
                        "L21",
                        Severity.WARN,
                        f"the folder ships the data file `{shipped.name}` ({shipped.size:,} bytes) and "
                        f"{function_label(facts)} reads it: check that it holds no validation tokens and that its "
                        "bytes are counted",
                        node,
                    )
                )
    return hits


def _free_matches(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        for node in own_nodes(facts.scope):
            masked = None
            if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Mult) and is_lossy(node.target):
                masked = node.value
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and node.value.value == 0
                and any(isinstance(t, ast.Subscript) and is_lossy(t.value) for t in node.targets)
            ):
                masked = next(t.slice for t in node.targets if isinstance(t, ast.Subscript))
            compare = _target_match(facts, masked) if masked is not None else None
            if compare is not None:
                hits.append(
                    Hit(
                        "L21",
                        Severity.FAIL,
                        f"{function_label(facts)} zeroes the loss where `{ast.unparse(compare)[:60]}`: the target "
                        "is matched against a sequence from neither the model, the input nor the target, i.e. "
                        "validation targets the submission carries, and the positions they match are scored as "
                        "free (a paid prefix)",
                        node,
                    )
                )
    return hits


def _target_match(facts: FunctionFacts, node: ast.AST, depth: int = 2) -> ast.Compare | None:
    """``a == y`` in ``node`` (or in what its names were defined from) with ``y`` the target and ``a`` a sequence
    from elsewhere: not the model's output, not a constant, not the target."""
    for child in ast.walk(node):
        if isinstance(child, ast.Compare) and len(child.ops) == 1 and isinstance(child.ops[0], ast.Eq):
            sides = (child.left, child.comparators[0])
            for target, other in (sides, sides[::-1]):
                if _carries(facts, target, is_target_name) and _foreign_sequence(facts, other):
                    return child
        if depth > 0 and isinstance(child, ast.Name):
            for value in facts.definitions.get(child.id, []):
                found = _target_match(facts, value, depth - 1)
                if found is not None:
                    return found
    return None


SCALAR_METHODS = {"numel", "size", "dim", "len", "item", "shape"}


def _carries(facts: FunctionFacts, node: ast.AST, test: Callable[[str], bool], depth: int = 3) -> bool:
    """The values of ``node`` come from a name ``test`` accepts: followed through local definitions, the
    receivers of methods (``y.reshape(-1)``) and sliced arrays, but not through slice bounds or sizes
    (``x[:y.numel()]`` carries ``x``, not ``y``)."""
    if isinstance(node, ast.Name):
        return test(node.id) or (
            depth > 0 and any(_carries(facts, v, test, depth - 1) for v in facts.definitions.get(node.id, []))
        )
    if isinstance(node, ast.Subscript):
        return _carries(facts, node.value, test, depth)
    if isinstance(node, ast.Attribute):
        return node.attr not in SCALAR_METHODS and (test(node.attr) or _carries(facts, node.value, test, depth))
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return node.func.attr not in SCALAR_METHODS and _carries(facts, node.func.value, test, depth)
        return call_name(node) not in SCALAR_METHODS and any(_carries(facts, a, test, depth) for a in node.args)
    return any(_carries(facts, child, test, depth) for child in ast.iter_child_nodes(node))


def _foreign_sequence(facts: FunctionFacts, node: ast.AST) -> bool:
    if not isinstance(node, (ast.Name, ast.Subscript, ast.Attribute, ast.Call)) or _carries(
        facts, node, is_target_name
    ):
        return False
    if any(isinstance(c, ast.Call) and call_name(c) in {"argmax", "topk", "max"} for c in ast.walk(node)):
        return False
    if any(words(name) & MODEL_WORDS for name in identifiers(node)):
        return False
    if derives(facts, node, lambda name: bool(words(name) & MODEL_WORDS)):
        return False
    if _carries(facts, node, lambda name: bool(words(name) & INPUT_WORDS)):
        return False  # the scored stream itself (``x == y``: a repeat of the previous token), not a copy
    # a sequence: something sliced or indexed (a constant id or a config value is not)
    defined = [v for n in identifiers(node) for v in facts.definitions.get(n, [])]
    return any(isinstance(c, ast.Subscript) for value in [node, *defined] for c in ast.walk(value))


def _what_it_is(shipped: ShippedFile) -> str:
    if shipped.token_shard:
        return ", a token shard"
    if shipped.named_val:
        return ", named as validation data"
    return ""


def _module_string_names(context: Context) -> tuple[dict[str, str], set[int]]:
    """Module-level ``PREFIX = "val_prefix.xz"``: names bound to a string constant, and those constants' ids."""
    names: dict[str, str] = {}
    constants: set[int] = set()
    for tree in context.program.trees:
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                if isinstance(statement.value.value, str):
                    for target in statement.targets:
                        if isinstance(target, ast.Name):
                            names[target.id] = statement.value.value
                            constants.add(id(statement.value))
    return names, constants


def _named_file(context: Context, node: ast.AST, module_names: dict[str, str]) -> ShippedFile | None:
    """The shipped file a string constant (or a module-level name bound to one) in ``node`` names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in module_names:
        text = module_names[node.id]
    else:
        return None
    for shipped in context.shipped_files:
        if text == shipped.name or text.endswith("/" + shipped.name) or text.endswith(shipped.name.rsplit("/", 1)[-1]):
            if len(text) >= 3:
                return shipped
    return None
