"""The effective configuration of a submission, and a static evaluator of conditions over it.

Parameter Golf scripts read every knob from the environment (``NAME = int(os.environ.get("NAME", d))``).
The configuration a run really used is the script's defaults, overridden by the environment variables of
the run command in the folder's README, overridden in turn by the hyperparameters its logs print. Values
the audit cannot determine are :data:`UNKNOWN`; a condition over an unknown value keeps both branches live.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: object = _Unknown()
ENV_READERS = {"get", "getenv"}
ENV_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")


@dataclass
class ConfigVar:
    """One knob: the name the code reads it by, its environment variable and the value in effect."""

    name: str  # as written in the code: attribute ("ttt_enabled") or global ("TTT_ENABLED")
    is_global: bool  # a module-level name (read as a bare Name) rather than an attribute
    env: str | None
    expression: ast.expr | None  # the defining expression, re-evaluated under overrides
    value: object = UNKNOWN
    source: str = "default"  # default | constant | README | log

    def describe(self) -> str:
        label = self.env or self.name
        return f"{label}={_show(self.value)} ({self.source})"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


class Evaluator:
    """Evaluates an expression to a Python value, or UNKNOWN, from constants, the environment and knobs."""

    def __init__(self, env: Mapping[str, str], config: EffectiveConfig | None = None) -> None:
        self.env = env
        self.config = config

    def value(self, node: ast.expr | None) -> object:
        if node is None:
            return UNKNOWN
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            return UNKNOWN
        try:
            return handler(node)
        except (TypeError, ValueError, ZeroDivisionError, AttributeError, IndexError, KeyError):
            return UNKNOWN

    def truth(self, node: ast.expr) -> bool | None:
        """True, False, or None when the condition depends on something unknown."""
        result = self.value(node)
        return None if result is UNKNOWN else bool(result)

    def _Constant(self, node: ast.Constant) -> object:
        return node.value

    def _Name(self, node: ast.Name) -> object:
        if self.config is None:
            return UNKNOWN
        return self.config.global_value(node.id)

    def _Attribute(self, node: ast.Attribute) -> object:
        if self.config is None:
            return UNKNOWN
        return self.config.attribute_value(node.attr)

    def _UnaryOp(self, node: ast.UnaryOp) -> object:
        operand = self.value(node.operand)
        if operand is UNKNOWN:
            return UNKNOWN
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.USub):
            return -operand  # type: ignore[operator]
        return UNKNOWN

    def _BoolOp(self, node: ast.BoolOp) -> object:
        values = [self.value(v) for v in node.values]
        if isinstance(node.op, ast.And):
            if any(v is not UNKNOWN and not v for v in values):
                return False
            return UNKNOWN if any(v is UNKNOWN for v in values) else values[-1]
        if any(v is not UNKNOWN and v for v in values):
            return True
        return UNKNOWN if any(v is UNKNOWN for v in values) else values[-1]

    def _Compare(self, node: ast.Compare) -> object:
        left = self.value(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.value(comparator)
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            if not _compare(op, left, right):
                return False
            left = right
        return True

    def _BinOp(self, node: ast.BinOp) -> object:
        left, right = self.value(node.left), self.value(node.right)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        operators = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.FloorDiv: lambda a, b: a // b,
            ast.Div: lambda a, b: a / b,
            ast.Mod: lambda a, b: a % b,
        }
        operator = operators.get(type(node.op))
        return UNKNOWN if operator is None else operator(left, right)

    def _IfExp(self, node: ast.IfExp) -> object:
        test = self.truth(node.test)
        if test is None:
            return UNKNOWN
        return self.value(node.body if test else node.orelse)

    def _Tuple(self, node: ast.Tuple) -> object:
        items = [self.value(item) for item in node.elts]
        return UNKNOWN if any(item is UNKNOWN for item in items) else tuple(items)

    def _Subscript(self, node: ast.Subscript) -> object:
        if _is_environ(node.value):
            key = self.value(node.slice)
            return self.env.get(key, UNKNOWN) if isinstance(key, str) else UNKNOWN
        return UNKNOWN

    def _Call(self, node: ast.Call) -> object:
        func = node.func
        if _is_env_read(node):
            key = self.value(node.args[0]) if node.args else UNKNOWN
            if not isinstance(key, str):
                return UNKNOWN
            if key in self.env:
                return self.env[key]
            return self.value(node.args[1]) if len(node.args) > 1 else None
        if _is_getattr_knob(node) and self.config is not None:
            return self.config.attribute_value(node.args[1].value)  # getattr(args, "slot_enabled", False)
        args = [self.value(arg) for arg in node.args]
        if any(arg is UNKNOWN for arg in args):
            return UNKNOWN
        if isinstance(func, ast.Name) and func.id in ("int", "float", "bool", "str") and len(args) <= 1:
            return {"int": int, "float": float, "bool": bool, "str": str}[func.id](*args)
        if isinstance(func, ast.Attribute) and func.attr in ("lower", "upper", "strip") and not node.args:
            base = self.value(func.value)
            return getattr(base, func.attr)() if isinstance(base, str) else UNKNOWN
        return UNKNOWN


def _is_getattr_knob(node: ast.Call) -> bool:
    """``getattr(args, "name", default)``: a knob read by name."""
    return (
        isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) in (2, 3)
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    )


def _compare(op: ast.cmpop, left: object, right: object) -> bool:
    table = {
        ast.Eq: lambda a, b: a == b,
        ast.NotEq: lambda a, b: a != b,
        ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b,
        ast.Gt: lambda a, b: a > b,
        ast.GtE: lambda a, b: a >= b,
        ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b,
        ast.Is: lambda a, b: a is b,
        ast.IsNot: lambda a, b: a is not b,
    }
    return bool(table[type(op)](left, right))


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _is_env_read(node: ast.Call) -> bool:
    func = node.func
    if not isinstance(func, ast.Attribute) or func.attr not in ENV_READERS:
        return False
    return func.attr == "getenv" or _is_environ(func.value)


def env_key_of(node: ast.expr) -> str | None:
    """The environment variable an expression reads, if it reads exactly one."""
    keys = {
        call.args[0].value
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and _is_env_read(call)
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    }
    keys |= {
        sub.slice.value
        for sub in ast.walk(node)
        if isinstance(sub, ast.Subscript)
        and _is_environ(sub.value)
        and isinstance(sub.slice, ast.Constant)
        and isinstance(sub.slice.value, str)
    }
    return keys.pop() if len(keys) == 1 else None


class EffectiveConfig:
    """Knobs of one program with the values in effect; lookups by global name or by attribute name."""

    def __init__(self, variables: Iterable[ConfigVar]) -> None:
        self.globals: dict[str, ConfigVar] = {}
        self.attributes: dict[str, ConfigVar] = {}
        for var in variables:
            table = self.globals if var.is_global else self.attributes
            if var.name in table:
                table[var.name].value = UNKNOWN  # assigned twice: which one holds is unknowable
                table[var.name].source = "ambiguous"
            else:
                table[var.name] = var

    def global_value(self, name: str) -> object:
        var = self.globals.get(name)
        return UNKNOWN if var is None else var.value

    def attribute_value(self, name: str) -> object:
        var = self.attributes.get(name) or self.attributes.get(name.lower())
        return UNKNOWN if var is None else var.value

    def variables(self) -> list[ConfigVar]:
        return list(self.globals.values()) + list(self.attributes.values())

    def describe_names(self, names: Iterable[str]) -> str:
        """``TTT_ENABLED=0 (default)`` for each knob among ``names``."""
        parts = []
        for name in names:
            var = self.globals.get(name) or self.attributes.get(name)
            if var is not None and var.describe() not in parts:
                parts.append(var.describe())
        return ", ".join(parts)


def collect_variables(trees: Iterable[ast.Module]) -> list[ConfigVar]:
    """Every assignment that reads the environment, and every module-level literal constant."""
    found: list[ConfigVar] = []
    for tree in trees:
        for statement in tree.body:
            if (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and isinstance(statement.value, ast.Constant)
            ):
                found.append(ConfigVar(statement.targets[0].id, True, None, statement.value, source="constant"))
        module_level = {id(s) for s in tree.body}
        for node in ast.walk(tree):
            target, value = _single_assignment(node)
            if target is None or value is None or env_key_of(value) is None:
                continue
            if isinstance(target, ast.Name):
                found.append(ConfigVar(target.id, id(node) in module_level, env_key_of(value), value))
            elif isinstance(target, ast.Attribute):
                found.append(ConfigVar(target.attr, False, env_key_of(value), value))
    found.extend(_class_attributes(trees))
    return found


def _class_attributes(trees: Iterable[ast.Module]) -> list[ConfigVar]:
    """Class-level knobs (``class Hyperparameters: seed = int(os.environ.get("SEED", 1337))``)."""
    found = []
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                target, value = _single_assignment(statement)
                if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                    found.append(ConfigVar(target.id, False, None, value, source="constant"))
    return found


def _single_assignment(node: ast.AST) -> tuple[ast.expr | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        return node.targets[0], node.value
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return node.target, node.value
    return None, None


def parse_log_value(text: str) -> object:
    """A hyperparameter value as a log prints it: True/False, a number, or the text."""
    stripped = text.strip()
    if stripped in ("True", "False"):
        return stripped == "True"
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            pass
    return stripped


def build_config(
    trees: list[ast.Module], readme_env: Mapping[str, str], log_values: Mapping[str, object]
) -> EffectiveConfig:
    """Defaults, then the README command's environment, then the hyperparameters the logs print."""
    variables = collect_variables(trees)
    config = EffectiveConfig(variables)
    defaults = Evaluator({}, config)
    with_readme = Evaluator(readme_env, config)
    for var in config.variables():
        if var.source == "ambiguous":
            continue
        var.value = defaults.value(var.expression)
        if var.env is not None and var.env in readme_env:
            var.value = with_readme.value(var.expression)
            var.source = "README"
        logged = log_values.get(var.name.lower(), log_values.get((var.env or "").lower(), UNKNOWN))
        if logged is not UNKNOWN:
            var.value = _coerce_like(logged, var.value)
            var.source = "log"
    return config


def _coerce_like(logged: object, current: object) -> object:
    if isinstance(current, bool) and isinstance(logged, int):
        return bool(logged)
    return logged


def readme_environment(readme_text: str) -> dict[str, str]:
    """Environment assignments on the README's command lines that run the script (``A=1 B=2 torchrun …``)."""
    env: dict[str, str] = {}
    joined = re.sub(r"\\\s*\n", " ", readme_text)
    for line in joined.splitlines():
        stripped = line.strip().strip("`").strip()
        if "train_gpt" not in stripped and "torchrun" not in stripped:
            continue
        try:
            tokens = shlex.split(stripped, comments=True)
        except ValueError:
            tokens = stripped.split()
        for token in tokens:
            if token in ("export", "env", "sudo"):
                continue
            match = ENV_ASSIGNMENT.match(token)
            if match is None:
                break
            env[match.group(1)] = match.group(2)
    return env
