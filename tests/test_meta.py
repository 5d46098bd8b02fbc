"""Meta-tests that keep the extension surface honest: every hook is documented and tested."""

from __future__ import annotations

import ast
import inspect
import re
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


# Every golfc/runtime/*.py together: the core a reader must hold in mind (issue 12). A hook a trick needs is a
# small, additive edit; whatever belongs to one default plugin (plain_eval's window helpers) lives there.
CORE_RUNTIME_LINE_BUDGET = 1_200
PLUGIN_RUNTIME_LINE_BUDGET = 300  # each run-time module of a plugin (runtime.py and the like): a few screenfuls


def test_the_core_runtime_and_each_plugin_runtime_stay_within_their_line_budgets():
    """The emitted program must stay readable: budgets for the core's run-time code and each trick's."""
    root = ROOT
    core = {p.name: len(p.read_text().splitlines()) for p in (root / "golfc" / "runtime").glob("*.py")}
    assert sum(core.values()) <= CORE_RUNTIME_LINE_BUDGET, f"golfc/runtime: {sum(core.values())} lines ({core})"
    plugins = {f"{p.parent.name}/{p.name}": len(p.read_text().splitlines()) for p in (root / "plugins").glob("*/*.py")
               if p.name != "__init__.py" and not p.name.startswith("test_")}
    assert plugins, "no plugin runtime found"
    over = {name: n for name, n in plugins.items() if n > PLUGIN_RUNTIME_LINE_BUDGET}
    assert not over, f"plugin runtimes over {PLUGIN_RUNTIME_LINE_BUDGET} lines: {over}"


def test_shipped_code_cites_results_by_section_not_by_device_call():
    """A device-call number or one machine's timing means nothing to a reader of train_gpt.py: shipped code cites
    RESULTS.md (dated sections), which holds the figures with their command and device."""
    root = ROOT
    shipped = [p for p in (root / "plugins").glob("*/*.py") if p.name != "__init__.py" and not p.name.startswith("test_")]
    files = [*(root / "golfc" / "runtime").glob("*.py"), *shipped]
    cited = [f"{p.relative_to(root)}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bcall \d+\b|\b[HAB]\d00s?\b.*\d|\d\s?(ms|GiB|MiB)\b", line)]
    assert not cited, f"device-call numbers or device timings in shipped code: {cited}"
