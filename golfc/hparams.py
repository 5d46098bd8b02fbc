"""The hyperparameter registry behind the emitted ``class Hyperparameters``.

Plugins declare their knobs in ``golfc_add_hparams(hp)``; each becomes an environment variable of the
same name, read once at import (the reference baseline's convention), and an attribute in lower case.
``golfc build --set NAME=VALUE`` changes the emitted default.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, replace
from typing import Literal

from golfc.errors import HParamError
from golfc.runtime.checks import RULE_KINDS, range_problem, rule_problem

Kind = Literal["int", "float", "str", "bool", "intlist"]
Bound = tuple[str, "int | float"]  # (">=" | ">" | "<=", limit): see golfc/runtime/checks.py
RuleKind = Literal["multiple", "even_quotient", "at_least"]


@dataclass(frozen=True)
class Rule:
    """A rule between two numeric hyperparameters, checked at build and when the run starts.

    ``multiple``: LEFT % (factor * RIGHT) == 0; ``even_quotient``: LEFT // (factor * RIGHT) is even;
    ``at_least``: LEFT >= factor * RIGHT. ``note`` says why, in a few words.
    """

    kind: RuleKind
    left: str
    right: str
    factor: int = 1
    note: str = ""
    owner: str = "core"

    def as_tuple(self) -> tuple[str, str, str, int, str]:
        """The form the emitted program checks (``check_hparam_values``)."""
        return (self.kind, self.left, self.right, self.factor, self.note)


def make_bounds(ge: float | None, gt: float | None, le: float | None) -> tuple[Bound, ...]:
    """``ge=1`` -> ``((">=", 1),)``; unset limits are left out."""
    return tuple((op, limit) for op, limit in ((">=", ge), (">", gt), ("<=", le)) if limit is not None)


@dataclass(frozen=True)
class HParam:
    """One environment-overridable hyperparameter."""

    name: str  # environment variable, UPPER_SNAKE
    kind: Kind
    default: int | float | str | bool | tuple[int, ...]
    doc: str
    owner: str  # plugin that declared it
    choices: tuple[str, ...] = ()  # str only: the values it may take (empty: any)
    bounds: tuple[Bound, ...] = ()  # int and float: the range it must lie in (empty: any)

    @property
    def attr(self) -> str:
        return self.name.lower()

    def with_default(self, value: int | float | str | bool) -> HParam:
        return replace(self, default=value)


def list_text(values: tuple[int, ...]) -> str:
    """The environment form of an integer list: ``(2, 4, 6)`` -> ``"2,4,6"``; empty -> ``""``."""
    return ",".join(str(v) for v in values)


def parse_value(kind: Kind, text: str, name: str) -> int | float | str | bool | tuple[int, ...]:
    """Turn ``text`` into a value of ``kind``; raise HParamError naming ``name`` when it does not parse."""
    try:
        if kind == "intlist":  # "2,4,6"; "" is the empty list
            return tuple(int(v) for v in text.split(",") if v.strip())
        if kind == "int":
            return int(text)
        if kind == "float":
            return finite_float(text, name)
        if kind == "bool":
            if text.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if text.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return text
    except ValueError:
        expected = {"int": "an integer", "float": "a number", "bool": "0/1 or true/false",
                    "intlist": "comma-separated integers (2,4,6)"}[kind]
        raise HParamError(f"--set {name}={text}: expected {expected}") from None


def finite_float(text: str, name: str) -> float:
    """``float(text)``, refusing nan and inf: they have no literal to emit and no JSON form for golfc.lock."""
    value = float(text)
    if not math.isfinite(value):
        raise HParamError(f"--set {name}={text}: expected a finite number")
    return value


def close_names(name: str, known: list[str]) -> list[str]:
    """Declared names close to ``name``, ignoring case (``num_layers`` suggests ``NUM_LAYERS``)."""
    return difflib.get_close_matches(name.upper(), known, n=3)


class HParams:
    """Collects declarations from every active plugin; one instance per build."""

    def __init__(self) -> None:
        self._params: dict[str, HParam] = {}
        self._rules: list[Rule] = []
        self.current_owner = "core"

    # -- declaration API used by plugins ------------------------------------------------------------
    def int(
        self, name: str, default: int, doc: str, *, ge: int | None = None, gt: int | None = None, le: int | None = None
    ) -> None:
        """An integer knob; ``ge``/``gt``/``le`` bound it (``ge=1``: at least 1), at build and when the run starts."""
        self._declare(name, "int", int(default), doc, bounds=make_bounds(ge, gt, le))

    def float(
        self,
        name: str,
        default: float,
        doc: str,
        *,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
    ) -> None:
        """A number knob; ``ge``/``gt``/``le`` bound it, at build and when the run starts."""
        self._declare(name, "float", float(default), doc, bounds=make_bounds(ge, gt, le))

    def str(self, name: str, default: str, doc: str, choices: tuple[str, ...] = ()) -> None:
        """A text knob; with ``choices``, any other value is refused by ``--set`` and when the run starts."""
        if choices and default not in choices:
            raise HParamError(
                f"hyperparameter {name} (plugin {self.current_owner}): default {default!r}, expected one of "
                f"{', '.join(choices)}"
            )
        self._declare(name, "str", str(default), doc, tuple(choices))

    def bool(self, name: str, default: bool, doc: str) -> None:
        self._declare(name, "bool", bool(default), doc)

    def int_list(
        self, name: str, default: tuple[int, ...], doc: str, *, ge: int | None = None, le: int | None = None
    ) -> None:
        """A list of integers, written ``2,4,6`` in the environment and in ``--set`` (empty: none), read as a
        tuple; ``ge``/``le`` bound every element (layer lists: ``ge=0``)."""
        self._declare(name, "intlist", tuple(int(v) for v in default), doc, bounds=make_bounds(ge, None, le))

    def require_multiple(self, left: str, right: str, factor: int = 1, note: str = "") -> None:
        """``left`` must be a multiple of ``factor * right`` (``MODEL_DIM`` of ``NUM_HEADS``)."""
        self._add_rule("multiple", left, right, factor, note)

    def require_even_quotient(self, left: str, right: str, factor: int = 1, note: str = "") -> None:
        """``left // (factor * right)`` must be even (the head dimension ``MODEL_DIM // NUM_HEADS``, for RoPE)."""
        self._add_rule("even_quotient", left, right, factor, note)

    def require_at_least(self, left: str, right: str, factor: int = 1, note: str = "") -> None:
        """``left`` must be at least ``factor * right``."""
        self._add_rule("at_least", left, right, factor, note)

    def _add_rule(self, kind: RuleKind, left: str, right: str, factor: int, note: str) -> None:
        assert kind in RULE_KINDS
        for name in (left, right):
            if name not in self._params or self._params[name].kind not in ("int", "float"):
                raise HParamError(
                    f"rule on {left} and {right} (plugin {self.current_owner}): {name} is not a declared int or "
                    "float hyperparameter; expected the rule after both declarations"
                )
        if not isinstance(factor, int) or factor < 1:
            raise HParamError(f"rule on {left} and {right} (plugin {self.current_owner}): factor {factor!r}, "
                              "expected an integer >= 1")
        self._rules.append(Rule(kind, left, right, factor, note, self.current_owner))

    def _declare(
        self,
        name: str,
        kind: Kind,
        default: int | float | str | bool,
        doc: str,
        choices: tuple[str, ...] = (),
        bounds: tuple[Bound, ...] = (),
    ) -> None:
        if not name.isupper() or not name.replace("_", "").isalnum() or name[0].isdigit():
            raise HParamError(f"hyperparameter {name!r} (plugin {self.current_owner}): expected UPPER_SNAKE_CASE")
        if name in self._params:
            first = self._params[name].owner
            raise HParamError(f"hyperparameter {name} is declared by both {first} and {self.current_owner}")
        if isinstance(default, float) and not math.isfinite(default):
            owner = self.current_owner
            raise HParamError(f"hyperparameter {name} (plugin {owner}): default {default}, expected a finite number")
        problem = range_problem(name, default, bounds)
        if problem:
            raise HParamError(f"hyperparameter {name} (plugin {self.current_owner}): default {problem}")
        self._params[name] = HParam(name, kind, default, doc, self.current_owner, choices, bounds)

    # -- queries used by the builder ----------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> HParam:
        return self._params[name]

    def all(self) -> list[HParam]:
        """Declarations in declaration order (core first, then plugins in recipe order)."""
        return list(self._params.values())

    def rules(self) -> list[Rule]:
        """Rules between hyperparameters, in declaration order."""
        return list(self._rules)

    def ranges(self) -> dict[str, tuple[Bound, ...]]:
        """``{NAME: bounds}`` of every bounded hyperparameter, in declaration order."""
        return {p.name: p.bounds for p in self._params.values() if p.bounds}

    def check_values(self, overrides: dict[str, str]) -> None:
        """Refuse, in one line, emitted defaults out of their range (a ``--set`` value: defaults are checked when
        declared) or breaking a rule between two hyperparameters."""
        for param in self._params.values():
            problem = range_problem(param.name, param.default, param.bounds)
            if problem:
                raise HParamError(f"--set {problem}" if param.name in overrides else problem)
        values = {p.name: p.default for p in self._params.values()}
        for rule in self._rules:
            problem = rule_problem(rule.as_tuple(), values)
            if problem:
                raise HParamError(problem)

    def apply_overrides(self, overrides: dict[str, str]) -> None:
        """Pin emitted defaults from ``--set NAME=VALUE`` strings, then check ranges and rules."""
        for name, text in overrides.items():
            if name not in self._params:
                close = close_names(name, list(self._params))
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise HParamError(f"--set {name}: no active plugin declares this hyperparameter{hint}")
            param = self._params[name]
            if param.choices and text not in param.choices:
                raise HParamError(f"--set {name}={text}: expected one of {', '.join(param.choices)}")
            self._params[name] = param.with_default(parse_value(param.kind, text, name))
        self.check_values(overrides)


def parse_set_options(items: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``; raises HParamError on a malformed item."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise HParamError(f"--set {item!r}: expected NAME=VALUE")
        result[name.strip()] = value
    return result
