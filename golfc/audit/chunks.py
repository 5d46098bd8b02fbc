"""Which chunk of a loop an event reads: does a TTT step train on tokens past the ones just scored?

Score-first TTT scores chunk k, then trains on chunks <= k. An index offset (``train(chunks[i + 1])`` after
``score(chunks[i])``, or a training window ``val[i*C:(i+2)*C]`` that runs into the next chunk) trains on
tokens before they are scored, although a score comes first in the iteration. This module reads the
subscripts of validation data an event reaches through the function's local assignments, takes the upper
end of each (``a[i]`` ends at ``i + 1``, ``a[lo:hi]`` at ``hi``), and evaluates it with the loop variable and
every other name bound to numbers. An end that does not move with the loop variable, or one that cannot be
evaluated, says nothing; the verdict is "ahead" only when every binding tried puts the training end past
the scored end.
"""

from __future__ import annotations

import ast
import operator
import zlib

from golfc.audit.dataflow import Event, FunctionFacts

DEPTH = 5
LOOP_VALUES = (7, 8)
BINDINGS = (1_000, 7_919)  # seeds for the value every other name takes
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv,
}


class _Unknown(Exception):
    pass


def trains_ahead(facts: FunctionFacts, backward: Event, score: Event, loop: ast.AST) -> bool:
    """The training data of ``backward`` reaches further into the loop's chunks than ``score`` scored."""
    loop_names = facts.loop_variables.get(id(loop), set())
    if not loop_names:
        return False
    trained = _ends(facts, backward.node, loop_names, backward.val_roots)
    scored = _ends(facts, score.node, loop_names, score.val_roots)
    if not trained or not scored:
        return False
    for seed in BINDINGS:
        for value in LOOP_VALUES:
            train_end = _furthest(facts, trained, loop_names, value, seed)
            score_end = _furthest(facts, scored, loop_names, value, seed)
            if train_end is None or score_end is None or train_end <= score_end:
                return False
    return True


def _ends(facts: FunctionFacts, node: ast.AST, loop_names: set[str], val_roots: frozenset[str]) -> list[ast.expr]:
    """Upper ends of the subscripts of validation data that ``node`` reads, directly or through assignments."""
    ends: list[ast.expr] = []
    seen: set[int] = set()
    followed: set[str] = set()  # each name's definitions are read once: big functions share many names

    def visit(current: ast.AST, depth: int) -> None:
        for child in ast.walk(current):
            if isinstance(child, ast.Subscript) and id(child) not in seen:
                seen.add(id(child))
                end = _end_of(child)
                if end is not None and _base_name(child) in val_roots:
                    ends.append(end)
            if isinstance(child, ast.Name) and depth > 0 and child.id not in loop_names and child.id not in followed:
                followed.add(child.id)
                for value in facts.definitions.get(child.id, []):
                    visit(value, depth - 1)

    visit(node, DEPTH)
    return [end for end in ends if _moves_with_loop(facts, end, loop_names)]


def _end_of(node: ast.Subscript) -> ast.expr | None:
    if isinstance(node.slice, ast.Slice):
        return node.slice.upper
    if isinstance(node.slice, ast.Tuple):
        return None
    return ast.BinOp(left=node.slice, op=ast.Add(), right=ast.Constant(1))


def _base_name(node: ast.Subscript) -> str | None:
    value = node.value
    while isinstance(value, (ast.Subscript, ast.Attribute, ast.Call)):
        value = value.func if isinstance(value, ast.Call) else value.value
    return value.id if isinstance(value, ast.Name) else None


def _moves_with_loop(facts: FunctionFacts, end: ast.expr, loop_names: set[str]) -> bool:
    values = {_evaluate(facts, end, loop_names, value, BINDINGS[0]) for value in LOOP_VALUES}
    return None not in values and len(values) == len(LOOP_VALUES)


def _furthest(facts: FunctionFacts, ends: list[ast.expr], loop_names: set[str], value: int, seed: int):
    results = [_evaluate(facts, end, loop_names, value, seed) for end in ends]
    known = [r for r in results if r is not None]
    return max(known) if known else None


def _evaluate(facts: FunctionFacts, node: ast.expr, loop_names: set[str], value: int, seed: int):
    try:
        return _eval(facts, node, loop_names, value, seed, DEPTH)
    except (_Unknown, ZeroDivisionError, TypeError, RecursionError):
        return None


def _eval(facts: FunctionFacts, node: ast.AST, loop_names: set[str], value: int, seed: int, depth: int):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _eval(facts, node.left, loop_names, value, seed, depth)
        right = _eval(facts, node.right, loop_names, value, seed, depth)
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(facts, node.operand, loop_names, value, seed, depth)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max", "int"):
        args = [_eval(facts, arg, loop_names, value, seed, depth) for arg in node.args]
        if node.func.id == "int" and len(args) == 1:
            return int(args[0])
        # min(end, total): the clip at the end of the data; the symbolic total is far away
        return {"min": min, "max": max}[node.func.id](args) if args else _symbol("?", seed)
    if isinstance(node, ast.Call):  # len(val_tokens), tokens.numel(), range(...): far past any chunk
        return _symbol(ast.unparse(node), seed) * 1_000_000
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = node.id if isinstance(node, ast.Name) else ast.unparse(node)
        if name in loop_names:
            return value
        definitions = facts.definitions.get(name, []) if isinstance(node, ast.Name) else []
        if len(definitions) == 1 and depth > 0:
            return _eval(facts, definitions[0], loop_names, value, seed, depth - 1)
        return _symbol(name, seed)
    raise _Unknown(type(node).__name__)


def _symbol(name: str, seed: int) -> int:
    """A name the evaluation does not follow: a large stand-in, different per binding, so that a chunk size
    ``C`` in ``i * C`` dwarfs the ``+ 1`` of a target shift."""
    return seed * 1_000 + zlib.crc32(name.encode()) % 997 + 10_000
