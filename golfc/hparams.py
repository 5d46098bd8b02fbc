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

Kind = Literal["int", "float", "str", "bool"]


@dataclass(frozen=True)
class HParam:
    """One environment-overridable hyperparameter."""

    name: str  # environment variable, UPPER_SNAKE
    kind: Kind
    default: int | float | str | bool
    doc: str
    owner: str  # plugin that declared it
    choices: tuple[str, ...] = ()  # str only: the values it may take (empty: any)

    @property
    def attr(self) -> str:
        return self.name.lower()

    def with_default(self, value: int | float | str | bool) -> HParam:
        return replace(self, default=value)


def parse_value(kind: Kind, text: str, name: str) -> int | float | str | bool:
    """Turn ``text`` into a value of ``kind``; raise HParamError naming ``name`` when it does not parse."""
    try:
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
        expected = {"int": "an integer", "float": "a number", "bool": "0/1 or true/false"}[kind]
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
        self.current_owner = "core"

    # -- declaration API used by plugins ------------------------------------------------------------
    def int(self, name: str, default: int, doc: str) -> None:
        self._declare(name, "int", int(default), doc)

    def float(self, name: str, default: float, doc: str) -> None:
        self._declare(name, "float", float(default), doc)

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

    def _declare(
        self, name: str, kind: Kind, default: int | float | str | bool, doc: str, choices: tuple[str, ...] = ()
    ) -> None:
        if not name.isupper() or not name.replace("_", "").isalnum() or name[0].isdigit():
            raise HParamError(f"hyperparameter {name!r} (plugin {self.current_owner}): expected UPPER_SNAKE_CASE")
        if name in self._params:
            first = self._params[name].owner
            raise HParamError(f"hyperparameter {name} is declared by both {first} and {self.current_owner}")
        if isinstance(default, float) and not math.isfinite(default):
            owner = self.current_owner
            raise HParamError(f"hyperparameter {name} (plugin {owner}): default {default}, expected a finite number")
        self._params[name] = HParam(name, kind, default, doc, self.current_owner, choices)

    # -- queries used by the builder ----------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> HParam:
        return self._params[name]

    def all(self) -> list[HParam]:
        """Declarations in declaration order (core first, then plugins in recipe order)."""
        return list(self._params.values())

    def apply_overrides(self, overrides: dict[str, str]) -> None:
        """Pin emitted defaults from ``--set NAME=VALUE`` strings."""
        for name, text in overrides.items():
            if name not in self._params:
                close = close_names(name, list(self._params))
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise HParamError(f"--set {name}: no active plugin declares this hyperparameter{hint}")
            param = self._params[name]
            if param.choices and text not in param.choices:
                raise HParamError(f"--set {name}={text}: expected one of {', '.join(param.choices)}")
            self._params[name] = param.with_default(parse_value(param.kind, text, name))


def parse_set_options(items: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``; raises HParamError on a malformed item."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise HParamError(f"--set {item!r}: expected NAME=VALUE")
        result[name.strip()] = value
    return result
