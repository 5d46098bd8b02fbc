"""Parsing submissions whatever Python they target, on the Python the audit runs on.

Records target Python 3.12, whose f-strings (PEP 701) may reuse the enclosing quote inside a replacement
field (``f"{", ".join(xs)}"``) or put a backslash there. Python 3.11 rejects both. :func:`parse_python`
first parses the text as it is; when that fails on an f-string it rewrites each nested string literal that
3.11 cannot read into an equivalent expression without quotes (``chr(44)+chr(32)``) or re-quotes a nested
f-string, keeping every line where it was, and parses that. The tree then carries the original line numbers,
so findings point at the shipped text.

Module-level aliases of ``True``/``False``/``None`` that minifiers introduce (``_B=True``) are inlined into the
tree by :func:`inline_constant_aliases`, so rules that look for ``requires_grad=True`` read minified code too.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass

STRING_PREFIXES = {"", "r", "u", "b", "br", "rb", "f", "fr", "rf"}
QUOTES = ("'", '"')
OPENERS, CLOSERS = "([{", ")]}"


class CannotRequote(Exception):
    """The f-string uses a PEP 701 form the rewrite does not handle (comments, nested quotes three deep, …)."""


@dataclass(frozen=True)
class Parsed:
    """A module, and a note when it needed the PEP 701 rewrite to parse on this Python."""

    tree: ast.Module
    note: str | None = None


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def parse_python(text: str, label: str) -> Parsed:
    """The module; raises SyntaxError (with the original message) when neither the text nor its rewrite parse."""
    try:
        return Parsed(ast.parse(text, filename=label))
    except SyntaxError as original:
        if not needs_newer_python(original, text):
            raise
        try:
            rewritten = requote_fstrings(text)
            tree = ast.parse(rewritten, filename=label)
        except (CannotRequote, SyntaxError):
            raise original from None
        return Parsed(tree, PEP701_NOTE.format(python=running_python()))


PEP701_NOTE = (
    "uses Python 3.12 f-string syntax (PEP 701: a quote or backslash reused inside a replacement field); "
    "Python {python} reads it after nested strings were re-quoted, line numbers unchanged"
)


FSTRING_START = re.compile(r"(?<![\w])(?:[rR]?[fF]|[fF][rR])[\"']")


def needs_newer_python(error: SyntaxError, text: str) -> bool:
    """The syntax error may be one Python 3.12 would not raise: an f-string form of PEP 701 (3.11 says
    "f-string: …", or "unterminated string literal" on a line where an f-string starts)."""
    if sys.version_info >= (3, 12):
        return False
    if "f-string" in (error.msg or ""):
        return True
    lines = text.splitlines()
    start = max((error.lineno or 1) - 2, 0)
    return any(FSTRING_START.search(line) for line in lines[start : (error.lineno or 1)])


# -- the rewrite ---------------------------------------------------------------------------------------
def requote_fstrings(text: str) -> str:
    """``text`` with every f-string's nested literals readable by Python 3.11; lines are kept in place."""
    return _Requoter(text).run()


class _Requoter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []

    def run(self) -> str:
        text, i = self.text, 0
        while i < len(text):
            char = text[i]
            if char == "#":
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                self.out.append(text[i:end])
                i = end
            elif char in QUOTES or (char.isalpha() and (i == 0 or not _is_word_char(text[i - 1]))):
                start = _string_start(text, i)
                if start is None:
                    end = _word_end(text, i)
                    self.out.append(text[i:end])
                    i = end
                else:
                    end, replacement = self.string(i, outer_quotes=())
                    self.out.append(replacement)
                    i = end
            else:
                self.out.append(char)
                i += 1
        return "".join(self.out)

    def string(self, i: int, outer_quotes: tuple[str, ...]) -> tuple[int, str]:
        """(end, text) of the string literal at ``i``; f-strings have their fields rewritten."""
        prefix, quote, body_start = _string_start(self.text, i)  # type: ignore[misc]
        if "f" not in prefix.lower():
            end = _plain_string_end(self.text, body_start, quote, raw="r" in prefix.lower())
            return end, self.text[i:end]
        return self.fstring(i, prefix, quote, body_start, outer_quotes)

    def fstring(
        self, i: int, prefix: str, quote: str, body_start: int, outer_quotes: tuple[str, ...]
    ) -> tuple[int, str]:
        text = self.text
        raw = "r" in prefix.lower()
        quotes = (*outer_quotes, quote)
        parts = [text[i:body_start]]
        j = body_start
        while True:
            if j >= len(text):
                raise CannotRequote("unterminated f-string")
            if text.startswith(quote, j):
                parts.append(quote)
                return j + len(quote), "".join(parts)
            char = text[j]
            if char == "\\" and not raw:
                parts.append(text[j : j + 2])
                j += 2
            elif text.startswith("{{", j) or text.startswith("}}", j):
                parts.append(text[j : j + 2])
                j += 2
            elif char == "{":
                j, field = self.field(j + 1, quotes)
                parts.append("{" + field)
            else:
                parts.append(char)
                j += 1

    def field(self, j: int, quotes: tuple[str, ...]) -> tuple[int, str]:
        """From after ``{`` to after the matching ``}``: the expression, conversion and format spec."""
        text = self.text
        parts: list[str] = []
        depth = 0
        while True:
            if j >= len(text):
                raise CannotRequote("unterminated replacement field")
            char = text[j]
            if char == "#":
                raise CannotRequote("comment inside a replacement field")
            if char in QUOTES or (char.isalpha() and not _is_word_char(text[j - 1])):
                start = _string_start(text, j)
                if start is not None:
                    end, literal = self.nested_literal(j, quotes)
                    parts.append(literal)
                    j = end
                    continue
                end = _word_end(text, j)
                parts.append(text[j:end])
                j = end
                continue
            if char in OPENERS:
                depth += 1
            elif char in CLOSERS:
                if depth == 0:  # the closing brace of the field
                    parts.append("}")
                    return j + 1, "".join(parts)
                depth -= 1
            elif depth == 0 and char == "!" and not text.startswith("!=", j):
                end = j + 2
                parts.append(text[j:end])
                j = end
                continue
            elif depth == 0 and char == ":":
                end, spec = self.format_spec(j + 1, quotes)
                parts.append(":" + spec)
                return end, "".join(parts)
            elif char == "\\":
                raise CannotRequote("backslash in a replacement field outside a string")
            parts.append(char)
            j += 1

    def format_spec(self, j: int, quotes: tuple[str, ...]) -> tuple[int, str]:
        """From after ``:`` to after the field's ``}``; nested fields are rewritten too."""
        text = self.text
        parts: list[str] = []
        while True:
            if j >= len(text):
                raise CannotRequote("unterminated format spec")
            char = text[j]
            if char == "}":
                parts.append("}")
                return j + 1, "".join(parts)
            if char == "{":
                j, field = self.field(j + 1, quotes)
                parts.append("{" + field)
                continue
            parts.append(char)
            j += 1

    def nested_literal(self, j: int, quotes: tuple[str, ...]) -> tuple[int, str]:
        """A string literal inside a replacement field, in a form Python 3.11 accepts there."""
        prefix, quote, body_start = _string_start(self.text, j)  # type: ignore[misc]
        if "f" in prefix.lower():
            return self.requoted_fstring(j, prefix, quote, body_start, quotes)
        end = _plain_string_end(self.text, body_start, quote, raw="r" in prefix.lower())
        source = self.text[j:end]
        if quote[0] not in "".join(quotes) and "\\" not in source:
            return end, source
        return end, _quoteless(ast.literal_eval(source))

    def requoted_fstring(
        self, j: int, prefix: str, quote: str, body_start: int, quotes: tuple[str, ...]
    ) -> tuple[int, str]:
        end, rewritten = self.fstring(j, prefix, quote, body_start, quotes)
        if quote[0] not in "".join(quotes):
            return end, rewritten
        free = [q for q in QUOTES if q not in "".join(quotes)]
        body = rewritten[len(prefix) + len(quote) : len(rewritten) - len(quote)]
        if not free or free[0] in body or "\\" in body or "\n" in body:
            raise CannotRequote("nested f-string whose quotes cannot be changed")
        return end, f"{prefix}{free[0]}{body}{free[0]}"


def _quoteless(value: str | bytes) -> str:
    """An expression equal to ``value`` with no quote or backslash in it (on one line)."""
    if isinstance(value, bytes):
        return f"bytes(({''.join(f'{b},' for b in value)}))"
    if not value:
        return "str()"
    return "(" + "+".join(f"chr({ord(c)})" for c in value) + ")"


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _word_end(text: str, i: int) -> int:
    while i < len(text) and _is_word_char(text[i]):
        i += 1
    return i


def _string_start(text: str, i: int) -> tuple[str, str, int] | None:
    """(prefix, quote, body start) when a string literal starts at ``i``."""
    end = _word_end(text, i) if text[i] not in QUOTES else i
    prefix = text[i:end]
    if prefix.lower() not in STRING_PREFIXES or end >= len(text) or text[end] not in QUOTES:
        return None
    quote = text[end] * 3 if text.startswith(text[end] * 3, end) else text[end]
    return prefix, quote, end + len(quote)


def _plain_string_end(text: str, j: int, quote: str, raw: bool) -> int:
    """After the closing quote of a non-f string whose body starts at ``j`` (a backslash always escapes)."""
    del raw  # in raw strings too, a backslash keeps the next quote from closing the literal
    while j < len(text):
        if text[j] == "\\":
            j += 2
        elif text.startswith(quote, j):
            return j + len(quote)
        elif text[j] == "\n" and len(quote) == 1:
            raise CannotRequote("unterminated string")
        else:
            j += 1
    raise CannotRequote("unterminated string")


# -- minifier aliases ----------------------------------------------------------------------------------
def inline_constant_aliases(tree: ast.Module) -> dict[str, object]:
    """Replace loads of module-level names bound once to True/False/None (``_B=True``) by the constant.

    Only names bound exactly once in the whole module (no other assignment, parameter, loop target, import
    or ``global``) are inlined, so the tree means what it did. Returns the aliases found.
    """
    aliases = _constant_aliases(tree)
    if aliases:
        _Inliner(aliases).visit(tree)
        ast.fix_missing_locations(tree)
    return aliases


def _constant_aliases(tree: ast.Module) -> dict[str, object]:
    candidates: dict[str, object] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            if statement.value.value in (True, False, None) and isinstance(statement.value.value, (bool, type(None))):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        candidates[target.id] = statement.value.value
    if not candidates:
        return {}
    bindings: dict[str, int] = {}
    for node in ast.walk(tree):
        for name in _bound_here(node):
            if name in candidates:
                bindings[name] = bindings.get(name, 0) + 1
    return {name: value for name, value in candidates.items() if bindings.get(name, 0) == 1}


def _bound_here(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return [node.id]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names) * 2  # rebinding elsewhere: never inline
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    return []


class _Inliner(ast.NodeTransformer):
    def __init__(self, aliases: dict[str, object]) -> None:
        self.aliases = aliases

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            return ast.copy_location(ast.Constant(self.aliases[node.id]), node)
        return node
