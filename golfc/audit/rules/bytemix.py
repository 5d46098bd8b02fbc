"""L14: a token probability spread over its bytes (``p ** (1 / n_bytes)``) to mix with a byte-level model.

A byte-level mixture (PPM-D and the like) scored at token positions is a distribution over bytes, not over the
token vocabulary: ``p_token ** (1/n)`` per byte, mixed with byte predictions and multiplied back, does not sum
to 1 over tokens. Spreading a probability by the reciprocal of a byte count is the signature; with a mixture
in the same function it is FAIL, alone a WARN.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label, names_in
from golfc.audit.vocabulary import call_name, has_words, words

BYTE_COUNT_WORDS = {"byte", "bytes", "nbytes", "nb"}
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
    return hits


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
