"""Optional minification with python-minifier, guarded by an AST comparison.

Only transforms that keep the program's AST are enabled (comments, blank lines and indentation go for
free when the minifier re-prints the tree), plus removal of literal statements (docstrings). The guard
parses both versions, drops literal statements and ``pass`` from each, and requires identical dumps.
"""

from __future__ import annotations

import ast

import python_minifier

from golfc.emit.sections import Section
from golfc.errors import EmitError

_SAFE_OPTIONS = dict(
    remove_annotations=False,
    remove_pass=False,
    remove_literal_statements=True,
    combine_imports=False,
    hoist_literals=False,
    rename_locals=False,
    rename_globals=False,
    remove_object_base=False,
    convert_posargs_to_args=False,
    preserve_shebang=False,
    remove_asserts=False,
    remove_debug=False,
    remove_explicit_return_none=False,
    remove_builtin_exception_brackets=False,
    constant_folding=False,
)


class _DropLiteralStatements(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [s for s in body if not _is_literal_or_pass(s)]
                setattr(node, field, kept)
        return node


def _is_literal_or_pass(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))


def normalized_dump(source: str) -> str:
    return ast.dump(_DropLiteralStatements().visit(ast.parse(source)), include_attributes=False)


def minify_source(source: str, name: str) -> str:
    """Minify one section; raise EmitError if the result is not the same program."""
    result = python_minifier.minify(source, filename=name, **_SAFE_OPTIONS)
    if normalized_dump(result) != normalized_dump(source):
        raise EmitError(f"minifying <golfc:{name}> changed its AST; build without --minify and report this")
    return result if result.endswith("\n") else result + "\n"


def minify_sections(sections: list[Section]) -> list[Section]:
    return [Section(s.name, minify_source(s.source, s.name), s.origin) for s in sections]
