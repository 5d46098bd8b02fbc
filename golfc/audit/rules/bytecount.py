"""L17: a BPB denominator that does not count the text's bytes.

The score is bits per byte of the original text. Every record builds a per-token byte table from the
SentencePiece pieces (a byte-fallback token is 1 byte, a piece its UTF-8 length, the leading space added when
the previous token is not a boundary) and adds those bytes up. Two ways to inflate the denominator are read
here: a byte-fallback token counted as more than one byte (``base_bytes[i] = 3`` under ``sp.is_byte(i)``,
the U+FFFD bug of the Scylla record), and a byte total scaled or padded by a constant
(``byte_count += tb.sum() * 1.1``).

A third is a per-token byte table read from a data file (``base_bytes = np.load(meta)["base_bytes"]``, the
``.meta.npz`` sidecars of the Scylla/TokenMonster records) rather than built from the tokenizer's pieces, with
no unconditional check against the tokenizer (a check behind ``if validate_meta:`` does not count): the
denominator is then whatever the file says, which the audit cannot read. That is a WARN from the code alone;
the folder audit makes it a FAIL when ``submission.json`` names a tokenizer that is not a SentencePiece model
(then the file's table is the one the run scored with: ``upgrade_file_tables``).
"""

from __future__ import annotations

import ast
import re

from golfc.audit.dataflow import own_nodes
from golfc.audit.findings import Finding, Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import call_name, dotted, identifiers, words

BYTE_WORDS = {"byte", "bytes"}
TOTAL_WORDS = {"count", "counts", "sum", "sums", "total", "totals", "acc", "accum", "denominator", "denom"}
BYTE_TOKEN_TESTS = {"is_byte"}
TABLE_WORDS = {"base", "lut", "luts", "table", "tables"}  # with a byte word: a table indexed by token id
LOADERS = {"load", "fromfile", "loadtxt", "genfromtxt", "memmap", "load_file"}  # np/torch/json/pickle/safetensors
CHECKS = {"array_equal", "array_equiv", "equal", "allclose", "assert_array_equal", "assert_equal"}
FILE_TABLE = "reads the per-token BPB byte table"  # the message of a file-loaded table (upgraded by the folder)


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
    hits.extend(_file_tables(context))
    return hits


def _is_table_name(name: str) -> bool:
    parts = words(name.split(".")[-1])
    return bool(parts & BYTE_WORDS) and bool(parts & TABLE_WORDS)


def _loads_file(node: ast.AST, loaded: set[str]) -> ast.AST | None:
    """A file read in ``node``: a loader call, or an item of a name bound to one (``data["base_bytes"]``)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and call_name(child) in LOADERS:
            return child
        if isinstance(child, ast.Subscript) and isinstance(child.value, ast.Name) and child.value.id in loaded:
            return child
    return None


def _file_tables(context: Context) -> list[Hit]:
    checked = _checked_unconditionally(context)
    hits = []
    for facts in context.flow.all_facts():
        nodes = own_nodes(facts.scope)
        loaded = {
            item.optional_vars.id
            for node in nodes
            if isinstance(node, ast.With)
            for item in node.items
            if isinstance(item.optional_vars, ast.Name) and _loads_file(item.context_expr, set()) is not None
        }
        loaded |= {
            target.id
            for node in nodes
            if isinstance(node, ast.Assign) and _loads_file(node.value, set()) is not None
            for target in node.targets
            if isinstance(target, ast.Name) and not _is_table_name(target.id)
        }
        for node in nodes:
            if not isinstance(node, ast.Assign):
                continue
            names = [t.id for t in node.targets if isinstance(t, ast.Name) and _is_table_name(t.id)]
            read = _loads_file(node.value, loaded) if names else None
            if read is None or names[0] in checked or facts.name in checked:
                continue
            hits.append(
                Hit(
                    "L17",
                    Severity.WARN,
                    f"{function_label(facts)} {FILE_TABLE} `{names[0]}` from a file (`{ast.unparse(read)[:60]}`) "
                    "instead of building it from the tokenizer's pieces, and nothing checks it against the "
                    "tokenizer unconditionally: the denominator is whatever the file says (the Scylla tables "
                    "over-counted byte-fallback tokens)",
                    node,
                )
            )
    return hits


def _checked_unconditionally(context: Context) -> set[str]:
    """Byte-table names compared (``np.array_equal(table, …)``) wherever the table is loaded: every ``if`` around
    the comparison must also hold the assignment of the compared table (``if path.exists(): table = load(…);
    check``). A check behind an ``if`` of its own (``if validate_meta:``) can be switched off and vouches for
    nothing."""
    checked: set[str] = set()

    def vouches(names: set[str], around: list[ast.If]) -> None:
        for name in names:
            if all(name in _assigned(branch) for branch in around):
                checked.add(name)
                checked.update(loaders.get(name, ()))  # ``table = read_meta(p)``: read_meta's table is checked

    def visit(statements: list[ast.stmt], around: list[ast.If]) -> None:
        for statement in statements:
            if isinstance(statement, ast.If):
                vouches(_compared(statement.test), around)
                visit(statement.body, [*around, statement])
                visit(statement.orelse, [*around, statement])
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            elif hasattr(statement, "body"):
                visit(statement.body, around)  # loops, with, try: the check still runs
                for name in ("orelse", "finalbody"):
                    visit(getattr(statement, name, []), around)
                for handler in getattr(statement, "handlers", []):
                    visit(handler.body, around)
            else:
                vouches(_compared(statement), around)

    loaders: dict[str, set[str]] = {}
    for facts in context.flow.all_facts():
        loaders = {}
        for node in own_nodes(facts.scope):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and call_name(node.value):
                for target in node.targets:
                    for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                        loaders.setdefault(name, set()).add(call_name(node.value) or "")
        visit(getattr(facts.scope, "body", []), [])
    return checked


def _assigned(branch: ast.If) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(branch):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _compared(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and call_name(child) in CHECKS:
            names.update(n for arg in child.args for n in identifiers(arg))
    return names


SENTENCEPIECE = ("sentencepiece", "spm", ".model", "_bpe")


def upgrade_file_tables(findings: list[Finding], tokenizer: str | None) -> list[Finding]:
    """A file-loaded byte table is a FAIL when the submission declares a tokenizer that is not a SentencePiece
    model (the fallback that builds the table from the pieces cannot be what ran)."""
    if not tokenizer or _is_sentencepiece(tokenizer):
        return findings
    return [
        Finding(
            f.rule,
            Severity.FAIL,
            f"{f.message}; submission.json declares the tokenizer '{tokenizer[:60]}', not a SentencePiece "
            "model, so the run scored with the file's table",
            f.file,
            f.line,
        )
        if f.rule == "L17" and f.severity == Severity.WARN and FILE_TABLE in f.message
        else f
        for f in findings
    ]


def _is_sentencepiece(tokenizer: str) -> bool:
    lowered = tokenizer.lower()
    return any(word in lowered for word in SENTENCEPIECE) or re.search(r"\bsp\s*-?\d", lowered) is not None


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
