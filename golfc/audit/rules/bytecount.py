"""L17: a BPB denominator that does not count the text's bytes.

The score is bits per byte of the original text. Every record builds a per-token byte table from the
SentencePiece pieces (a byte-fallback token is 1 byte, a piece its UTF-8 length, the leading space added when
the previous token is not a boundary) and adds those bytes up. Two ways to inflate the denominator are read
here: a byte-fallback token counted as more than one byte (``base_bytes[i] = 3`` under ``sp.is_byte(i)``,
the U+FFFD bug of the Scylla record), and a byte total scaled or padded by a constant
(``byte_count += tb.sum() * 1.1``).
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import call_name, dotted, words

BYTE_WORDS = {"byte", "bytes"}
TOTAL_WORDS = {"count", "counts", "sum", "sums", "total", "totals", "acc", "accum", "denominator", "denom"}
BYTE_TOKEN_TESTS = {"is_byte"}


def check(context: Context) -> list[Hit]:
    hits: list[Hit] = []
    for facts in context.flow.all_facts():
        label = function_label(facts)
        for node in own_nodes(facts.scope):
            if isinstance(node, ast.If) and _tests_byte_token(node.test):
                hits.extend(_fallback_widths(label, node))
            elif isinstance(node, ast.AugAssign) and _is_byte_total(node.target):
                constant = _scaling_constant(node.value)
                if constant is not None:
                    hits.append(
                        Hit(
                            "L17",
                            Severity.FAIL,
                            f"{label} adds to the BPB byte total `{ast.unparse(node.target)}` an amount scaled or "
                            f"padded by the constant {constant}: the denominator must be the text's own bytes",
                            node,
                        )
                    )
    return hits


def _tests_byte_token(test: ast.expr) -> bool:
    """``sp.is_byte(i)`` (not negated): the branch that sizes byte-fallback tokens."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return False
    return any(isinstance(n, ast.Call) and call_name(n) in BYTE_TOKEN_TESTS for n in ast.walk(test))


def _fallback_widths(label: str, branch: ast.If) -> list[Hit]:
    """``table[i] = N`` with N > 1 in the byte-token branch: each byte-fallback token is one byte of text."""
    hits = []
    for statement in branch.body:
        if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Constant):
            continue
        value = statement.value.value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 1:
            continue
        for target in statement.targets:
            if isinstance(target, ast.Subscript) and words(dotted(target.value) or "") & BYTE_WORDS:
                hits.append(
                    Hit(
                        "L17",
                        Severity.FAIL,
                        f"{label} counts a byte-fallback token as {value:g} bytes in `{ast.unparse(target)}`: "
                        "a byte token stands for one byte of text, so the BPB denominator is inflated",
                        statement,
                    )
                )
    return hits


def _is_byte_total(target: ast.expr) -> bool:
    key = dotted(target.value if isinstance(target, ast.Subscript) else target) or ""
    parts = words(key.split(".")[-1])
    return bool(parts & BYTE_WORDS) and bool(parts & TOTAL_WORDS)


def _scaling_constant(value: ast.expr) -> float | None:
    """A numeric constant other than 0 or 1 that multiplies, divides or is added to the byte amount."""
    for node in ast.walk(value):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.Add, ast.Sub)):
            for side in (node.left, node.right):
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, (int, float))
                    and not isinstance(side.value, bool)
                    and side.value not in (0, 1)
                ):
                    return side.value
    return None
