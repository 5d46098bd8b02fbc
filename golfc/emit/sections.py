"""Sections: the units of the emitted program, each one run-time file or one generated block."""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from golfc.errors import EmitError

PROJECT_PACKAGES = ("golfc", "golfc_plugins", "golfc_local_plugins")
CORE_DIR = Path(__file__).resolve().parent.parent / "runtime"
REPO_ROOT = CORE_DIR.parent.parent
RESERVED_NAMES = ("__golfc_load__", "__golfc_source__")  # globals of the self-extracting loader (wrap.py)


@dataclass(frozen=True)
class Section:
    """One named piece of the program. ``name`` becomes the pseudo-file ``<golfc:NAME>``."""

    name: str
    source: str
    origin: str  # repo-relative path of the file it came from, or "generated"

    @property
    def filename(self) -> str:
        return f"<golfc:{self.name}>"


def _is_project_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in PROJECT_PACKAGES
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in PROJECT_PACKAGES for alias in node.names)
    return False


def _is_future_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


@functools.lru_cache(maxsize=512)
def parsed(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, remembered: a build parses each section's text several times (blanking,
    name checks) and a test session builds the same sections hundreds of times. Callers must not change the tree."""
    return ast.parse(source, filename=filename)


def strip_build_only_lines(source: str, origin: str) -> str:
    """Blank top-level imports of golfc's own packages and ``__future__`` imports, keeping line numbers.

    Run-time files import each other only so that editors and tests can resolve names; in the emitted
    program every section shares one namespace. ``__future__`` annotations are applied to every section
    by the compiler flag instead (see wrap.py and the readable program's first line).
    """
    try:
        tree = parsed(source, origin)
    except SyntaxError as exc:
        raise EmitError(f"{origin}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # a NUL character (Python < 3.12 raises ValueError, not SyntaxError)
        raise EmitError(f"{origin}: not Python source: {exc}") from None
    lines = source.splitlines(keepends=True)
    for node in tree.body:
        if _is_project_import(node) or _is_future_import(node):
            for index in range(node.lineno - 1, node.end_lineno or node.lineno):
                lines[index] = "\n"
    return "".join(lines)


def module_file(module: str) -> Path:
    """The source file of a run-time module, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise EmitError(f"run-time module {module}: cannot be found ({exc})") from None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise EmitError(f"run-time module {module}: expected an importable .py file")
    return Path(spec.origin)


def display_path(path: Path) -> str:
    """Repo-relative path for golfc's own files, the bare file name otherwise (builds stay machine-independent)."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.name


def read_source(path: Path, origin: str) -> str:
    """A run-time file's text; an unreadable or non-UTF-8 file is an EmitError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EmitError(f"{origin}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise EmitError(f"{origin}: cannot be read ({exc.strerror or exc})") from None


def section_from_file(name: str, path: Path) -> Section:
    origin = display_path(path)
    return Section(name, strip_build_only_lines(read_source(path, origin), origin), origin)


def core_section(stem: str) -> Section:
    return section_from_file(f"core/{stem}", CORE_DIR / f"{stem}.py")


def top_level_names(source: str) -> set[str]:
    """Names a section binds at module level by def, class or assignment (imports excluded)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(parsed(source).body)
    return names - {"__all__"}


def check_unique_names(sections: list[Section]) -> None:
    """Fail when two sections bind the same top-level name: in one namespace the later would win silently."""
    owner: dict[str, str] = {}
    for section in sections:
        for name in sorted(top_level_names(section.source)):
            if name in RESERVED_NAMES:
                raise EmitError(
                    f"top-level name {name!r} in {section.filename} ({section.origin}) is reserved for golfc's loader"
                )
            if name in owner:
                raise EmitError(
                    f"top-level name {name!r} is defined by both <golfc:{owner[name]}> and {section.filename}"
                )
            owner[name] = section.name
