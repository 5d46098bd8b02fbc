"""A recipe: which plugins to compose and which hyperparameter defaults to pin."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """What ``golfc build`` was asked for, as hooks see it."""

    plugins: tuple[str, ...] = ()  # requested plugins, in the order given (defaults are implied)
    overrides: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE, unparsed
    minify: bool = False
