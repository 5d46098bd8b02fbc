"""A recipe: which plugins to compose and which hyperparameter defaults to pin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def unique_in_order(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats or blanks, first occurrence kept (``muon,muon`` is ``muon``)."""
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class Recipe:
    """What ``golfc build`` was asked for, as hooks see it."""

    plugins: tuple[str, ...] = ()  # requested plugins, in the order given, each once (defaults are implied)
    overrides: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE, unparsed
    minify: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugins", unique_in_order(self.plugins))
