"""L11 in native code: a per-position hint computed in C/C++ and gated on the token it predicts.

Some submissions move the eval-time n-gram state into a C or C++ file that a Python module of the folder
compiles and loads (``ctypes.CDLL``, ``cffi``, ``torch.utils.cpp_extension``). The Python dataflow never sees
that code, so it is read here, as text. An online n-gram over the val stream walks the tokens in order: for
position i it writes the hint for token i from the state of tokens < i, then learns token i. The leak is the
hint for position i depending on token i itself:

    for (i = 0; i < n; ++i) {
        tok = tokens[i];
        is_new_word = starts_new_word_lut[tok];        # a property of the realized token
        if (!is_new_word) { hint[i] = ...; }           # ... gates what position i is given
        update(state, tok);                             # only now is token i learned
    }

The reader strips comments and literals, finds each ``for`` loop, and walks its statements in order with the
conditions that guard them: a local read from a token array at the loop's own position (``tokens[i]``, or
``tokens[p]`` with ``p = pos[i]``) is the realized token; locals computed from it (a lookup table, a call that
fills out-parameters) are its gates; a write to an array at the loop position (``out[i] = …``) is a hint for
that position. A hint whose value or guarding condition uses a gate, in a loop that only afterwards uses the
token (the update), is an L11 FAIL. Gating on the previous token (``tokens[i - 1]``) is the legal form and is
not flagged. A native file is read only when a Python file of the folder names it (its stem) and loads native
code; a file the Python never names is not part of the submission's run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from golfc.audit.findings import Finding, Severity
from golfc.audit.reading import read_text_limited
from golfc.audit.vocabulary import words

NATIVE_SUFFIXES = {".c", ".cc", ".cpp", ".cxx", ".cu", ".h", ".hpp"}
LOADER = re.compile(r"\b(?:ctypes|cffi|cpp_extension|load_inline|CDLL|dlopen|LoadLibrary)\b")
TOKEN_ARRAY_WORDS = {"tok", "toks", "token", "tokens", "ids", "seq", "input", "inputs", "target", "targets"}
POSITION_WORDS = {"pos", "position", "positions", "offset", "offsets", "idx", "index", "indices", "start", "starts"}
MAX_FILES = 20
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Leak:
    line: int
    write: str  # the hint written, e.g. ``within_valid[i]``
    gate: str  # the gate it depends on
    token: str  # ``tok = tokens[i]``


def check_native(folder: Path) -> list[Finding]:
    """L11 FAILs for native sources of ``folder`` that a Python file of the folder loads."""
    sources, python = _files(folder)
    if not sources:
        return []
    loaders = [text for text in python.values() if LOADER.search(text)]
    findings = []
    for path in sources:
        if not any(re.search(rf"\b{re.escape(path.stem)}\b", text) for text in loaders):
            continue
        try:
            text = read_text_limited(path)
        except (OSError, ValueError):
            continue
        for leak in find_leaks(text):
            findings.append(
                Finding(
                    "L11",
                    Severity.FAIL,
                    f"the native loop writes the hint `{leak.write}` for its position under `{leak.gate}`, computed "
                    f"from the realized token `{leak.token}` that the loop learns only afterwards: the "
                    "probability every candidate gets must not depend on which token came (the compiled "
                    "code is loaded by the folder's Python)",
                    str(path.relative_to(folder)),
                    leak.line,
                )
            )
    return findings


def _files(folder: Path) -> tuple[list[Path], dict[Path, str]]:
    try:
        candidates = [p for p in folder.iterdir()]
        candidates += [c for p in candidates if p.is_dir() and not p.is_symlink() for c in p.iterdir()]
    except OSError:
        return [], {}
    sources = sorted(p for p in candidates if p.suffix.lower() in NATIVE_SUFFIXES and p.is_file())[:MAX_FILES]
    python: dict[Path, str] = {}
    if sources:
        for path in sorted(p for p in candidates if p.suffix == ".py" and p.is_file())[:MAX_FILES]:
            try:
                python[path] = read_text_limited(path)
            except (OSError, ValueError):
                continue
    return sources, python


# ---- a small reader of C-family loop bodies ----


def strip_code(text: str) -> str:
    """Comments, string and character literals blanked with spaces (offsets and line numbers are kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        two = text[i : i + 2]
        if two == "//":
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif two == "/*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif text[i] in "\"'":
            quote, end = text[i], i + 1
            while end < n and text[end] != quote and text[end] != "\n":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
            for k in range(i + 1, max(i + 1, end - 1)):
                if out[k] != "\n":
                    out[k] = " "
            i = end
            continue
        else:
            i += 1
            continue
        for k in range(i, end):
            if out[k] != "\n":
                out[k] = " "
        i = end
    return "".join(out)


def _close(text: str, start: int) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for i in range(start, len(text)):
        c = text[i]
        if c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
    return len(text)


_KEYWORD = re.compile(r"(if|while|for|switch)\s*\(|(else|do)\b")


def statements(text: str, start: int, end: int, conds: tuple[str, ...] = ()) -> list[tuple[int, str, tuple[str, ...]]]:
    """(offset, statement, guarding conditions) for the statements in ``text[start:end]``, in order."""
    out: list[tuple[int, str, tuple[str, ...]]] = []
    i = start
    while i < end:
        while i < end and text[i] in " \t\r\n;":
            i += 1
        if i < end:
            i = _statement(text, i, end, conds, out)
    return out


def _statement(text: str, i: int, end: int, conds: tuple[str, ...], out: list) -> int:
    """Reads the statement at ``i`` (a block, a compound statement or a simple one) into ``out``; returns where it
    ends. The conditions of ``if``/``while``/``switch`` guard what they control (a ``for`` header does not)."""
    match = _KEYWORD.match(text, i)
    if match and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
        if match.group(2):
            return _body(text, match.end(), end, conds, out)
        paren = text.index("(", i)
        close = _close(text, paren)
        header = text[paren + 1 : close - 1]
        return _body(text, close, end, (*conds, header) if match.group(1) != "for" else conds, out)
    if text[i] == "{":
        close = _close(text, i)
        out.extend(statements(text, i + 1, close - 1, conds))
        return close
    stop = _statement_end(text, i, end)
    out.append((i, text[i:stop].strip(), conds))
    return stop + 1


def _body(text: str, i: int, end: int, conds: tuple[str, ...], out: list) -> int:
    while i < end and text[i] in " \t\r\n":
        i += 1
    return _statement(text, i, end, conds, out) if i < end else i


def _statement_end(text: str, i: int, end: int) -> int:
    depth = 0
    while i < end:
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth <= 0:
            return i
        i += 1
    return end


def _split_assignment(statement: str) -> tuple[str, str] | None:
    depth = 0
    for k, c in enumerate(statement):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "=" and depth == 0:
            before = statement[k - 1] if k else ""
            after = statement[k + 1] if k + 1 < len(statement) else ""
            if after != "=" and before not in "=!<>":
                lhs = statement[: k - 1] if before in "+-*/%|&^" else statement[:k]
                return lhs.strip(), statement[k + 1 :].strip()
    return None


_TARGET = re.compile(r"([A-Za-z_]\w*(?:\s*(?:->|\.)\s*\w+)*)\s*(\[[^\]]*\])?\s*$")


def _target(lhs: str) -> tuple[str, str | None, bool] | None:
    """(base name, index text, is a member) of an assignment's left side (types of a declaration dropped)."""
    match = _TARGET.search(lhs)
    if match is None:
        return None
    name = match.group(1)
    member = "->" in name or "." in name
    base = _IDENT.match(name).group(0)  # type: ignore[union-attr]
    index = match.group(2)[1:-1].strip() if match.group(2) else None
    return base, index, member


def _mentions(expr: str, names: set[str]) -> str | None:
    for match in _IDENT.finditer(expr):
        before = expr[: match.start()].rstrip()
        if before.endswith(".") or before.endswith("->"):
            continue
        if match.group(0) in names:
            return match.group(0)
    return None


def _loops(code: str) -> list[tuple[str, int, int]]:
    """(loop variable, body start, body end) of every ``for`` loop with a body in braces."""
    loops = []
    for match in re.finditer(r"\bfor\s*\(", code):
        paren = match.end() - 1
        close = _close(code, paren)
        header = code[paren + 1 : close - 1]
        init = header.split(";")[0]
        var = re.search(r"([A-Za-z_]\w*)\s*=", init) or re.search(r"([A-Za-z_]\w*)\s*:", init)
        brace = close
        while brace < len(code) and code[brace] in " \t\r\n":
            brace += 1
        if var is None or brace >= len(code) or code[brace] != "{":
            continue
        loops.append((var.group(1), brace + 1, _close(code, brace) - 1))
    return loops


def find_leaks(text: str) -> list[Leak]:
    """Hints written for the loop position under a gate computed from that position's realized token."""
    code = strip_code(text)
    leaks = []
    for var, start, end in _loops(code):
        leak = _loop_leak(code, var, start, end)
        if leak is not None:
            leaks.append(leak)
    seen: set[int] = set()
    return [leak for leak in leaks if not (leak.line in seen or seen.add(leak.line))]


def _loop_leak(code: str, var: str, start: int, end: int) -> Leak | None:
    positions = {var}
    tokens: dict[str, str] = {}  # realized-token locals -> their read
    gates: set[str] = set()
    pending: tuple[int, str, str] | None = None  # a leaky write waiting for the token to be learned after it
    for offset, statement, conds in statements(code, start, end):
        if pending is not None and (_mentions(statement, set(tokens)) or _token_read(statement, positions)):
            line = code.count("\n", 0, pending[0]) + 1
            token = " = ".join(next(iter(tokens.items()), ("the token", f"at position {var}")))
            return Leak(line, pending[1], pending[2], token)
        tainted = gates | set(tokens)
        split = _split_assignment(statement)
        if split is None:
            call = re.match(r"\s*([\w:.>-]+)\s*\((.*)\)\s*$", statement, re.S)
            if call and _mentions(call.group(2), tainted):
                gates.update(m.group(1) for m in re.finditer(r"(?:^|,)\s*&?\s*([A-Za-z_]\w*)\s*(?=,|$)", call.group(2)))
            continue
        lhs, rhs = split
        target = _target(lhs)
        if target is None:
            continue
        base, index, member = target
        read = _READ.fullmatch(rhs)
        if read and read.group(2) in positions and index is None and not member:
            array = words(read.group(1))
            if array & POSITION_WORDS:
                positions.add(base)
                continue
            if array & TOKEN_ARRAY_WORDS:
                tokens[base] = f"{read.group(1)}[{read.group(2)}]"
                continue
        if index is not None and index in positions and base not in tokens:
            guard = next((c for c in conds if _mentions(c, tainted) or _token_read(c, positions)), None)
            used = _mentions(rhs, gates)
            if (guard is not None or used is not None) and pending is None:
                gate = used or _mentions(guard or "", tainted) or (guard or "").strip()
                pending = (offset, f"{base}[{index}]", gate)
            continue
        if not member and (_mentions(rhs, tainted) or _token_read(rhs, positions)):
            gates.add(base)
    return None


# ``tokens[i]``, with a cast around it: ``(uint16_t)tokens[i]``, ``uint16_t(tokens[i])``, ``static_cast<T>(…)``
_READ = re.compile(r"(?:\(\s*[\w\s*]+\)|[\w:<>\s]+\()?\s*\(?\s*([A-Za-z_]\w*)\s*\[\s*([A-Za-z_]\w*)\s*\]\s*\)*")


def _token_read(expr: str, positions: set[str]) -> bool:
    for match in re.finditer(r"([A-Za-z_]\w*)\s*\[\s*([A-Za-z_]\w*)\s*\]", expr):
        if match.group(2) in positions and words(match.group(1)) & TOKEN_ARRAY_WORDS:
            return True
    return False
