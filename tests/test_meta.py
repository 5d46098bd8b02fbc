"""Meta-tests that keep the extension surface honest: every hook is documented and tested."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from golfc import hookspecs
from golfc.slots import SLOTS

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, obj in vars(hookspecs).items() if name.startswith("golfc_") and inspect.isfunction(obj))


def _test_function_names() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("tests").rglob("test_*.py"), *ROOT.joinpath("plugins").rglob("test_*.py")]:
        tree = ast.parse(path.read_text())
        names.update(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    return names


def test_hookspecs_exist():
    assert len(HOOKS) == len(SLOTS) + 2  # every slot, plus hyperparameters and recipe validation


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc.splitlines()) >= 3, f"{hook} needs a real docstring (what, when, contract)"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    assert f"test_{hook.replace('golfc_', 'hook_', 1)}" in _test_function_names(), (
        f"write test_{hook.replace('golfc_', 'hook_', 1)} (tests/test_hooks.py) exercising {hook}"
    )


def test_every_slot_has_a_hookspec():
    assert {slot.hook_name for slot in SLOTS} <= set(HOOKS)


def test_core_runtime_stays_under_1500_lines():
    """The emitted program must stay readable: the core's run-time code has the baseline's 1,500-line cap."""
    lines = sum(len(p.read_text().splitlines()) for p in ROOT.joinpath("golfc", "runtime").glob("*.py"))
    assert 0 < lines < 1500, f"golfc/runtime has {lines} lines"
