"""L14: a token probability spread over its bytes (``p ** (1 / n_bytes)``) to mix with a byte-level model.

A byte-level mixture (PPM-D and the like) scored at token positions is a distribution over bytes, not over the
token vocabulary: ``p_token ** (1/n)`` per byte, mixed with byte predictions and multiplied back, does not sum
to 1 over tokens. Spreading a probability by the reciprocal of a byte count is the signature; with a mixture
in the same function it is FAIL, alone a WARN.

The same spread in the log domain, ``log_p / n_bytes`` repeated over the token's bytes, is a FAIL when its
exponential is mixed with another probability (``lam * exp(lp / n) + (1 - lam) * exp(byte_lp)``): a
per-byte mixture. A log-probability divided by a byte count and never mixed is the BPB formula, not this.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import FunctionFacts, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label, names_in
from golfc.audit.vocabulary import call_name, has_words, is_lossy, words

BYTE_COUNT_WORDS = {"byte", "bytes", "nbytes", "nb"}
LENGTH_WORDS = BYTE_COUNT_WORDS | {"len", "lens", "length", "lengths"}  # a per-token byte length
EXP_CALLS = {"exp", "exp2"}
MIXTURE_WORDS = {"ppm", "mix", "mixture", "mixed", "blend", "byte_model", "order"}


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        mixes = any(has_words(name, MIXTURE_WORDS) for name in [facts.name, *names_in(facts.scope)])
        for node in own_nodes(facts.scope):
            exponent = _pow_exponent(node)
            if exponent is None or not _reciprocal_of_byte_count(exponent):
                continue
            hits.append(
                Hit(
                    "L14",
                    Severity.FAIL if mixes else Severity.WARN,
                    f"{function_label(facts)} spreads a probability over bytes (`{ast.unparse(node)[:60]}`)"
                    + (" and mixes it with a byte-level model" if mixes else "")
                    + ": the result is not a distribution over the token vocabulary",
                    node,
                )
            )
        hits.extend(_log_spread_mixes(facts))
    return hits


def _log_spread_mixes(facts: FunctionFacts) -> list[Hit]:
    hits = []
    for node in own_nodes(facts.scope):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
            continue
        left, right = _exp_args(node.left), _exp_args(node.right)
        if not left or not right:
            continue
        spread = next((d for arg in left + right if (d := _spread(facts, arg)) is not None), None)
        if spread is None:
            continue
        hits.append(
            Hit(
                "L14",
                Severity.FAIL,
                f"{function_label(facts)} spreads a token log-probability over its bytes "
                f"(`{ast.unparse(spread)[:50]}`) and mixes it with another probability "
                f"(`{ast.unparse(node)[:60]}`): a per-byte mixture is not a distribution over the token vocabulary",
                node,
            )
        )
    return hits


def _exp_args(node: ast.AST) -> list[ast.expr]:
    return [
        c.args[0] for c in ast.walk(node) if isinstance(c, ast.Call) and call_name(c) in EXP_CALLS and len(c.args) == 1
    ]


def _spread(facts: FunctionFacts, node: ast.AST, depth: int = 2) -> ast.BinOp | None:
    """``log_p / n_bytes`` in ``node`` or in what its names were defined from."""
    for child in ast.walk(node):
        if isinstance(child, ast.BinOp) and isinstance(child.op, ast.Div) and is_lossy(child.left):
            if any(words(name) & LENGTH_WORDS for name in names_in(child.right)):
                return child
        if depth > 0 and isinstance(child, ast.Name):
            for value in facts.definitions.get(child.id, []):
                found = _spread(facts, value, depth - 1)
                if found is not None:
                    return found
    return None


def _pow_exponent(node: ast.AST) -> ast.expr | None:
    """The exponent of ``a ** e`` or ``torch.pow(a, e)`` / ``a.pow(e)``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return node.right
    if isinstance(node, ast.Call) and call_name(node) in ("pow", "float_power"):
        if isinstance(node.func, ast.Attribute) and len(node.args) == 1:
            return node.args[0]
        if len(node.args) == 2:
            return node.args[1]
    return None


def _reciprocal_of_byte_count(exponent: ast.expr) -> bool:
    """``1 / n_bytes``, ``1.0 / len(piece_bytes)``: one over something that counts bytes."""
    if not (isinstance(exponent, ast.BinOp) and isinstance(exponent.op, ast.Div)):
        return False
    numerator = exponent.left
    if not (isinstance(numerator, ast.Constant) and numerator.value == 1):
        return False
    return any(words(name) & BYTE_COUNT_WORDS for name in names_in(exponent.right))
