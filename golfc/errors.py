"""Errors golfc raises for bad input. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations


class GolfcError(Exception):
    """Base class: an error that is the user's input, not a bug. Its message is one line."""


class UnknownPluginError(GolfcError):
    """A plugin name that no catalogue entry, entry point or plugins-dir file provides."""


class SlotConflictError(GolfcError):
    """Two plugins claim a slot that takes exactly one (or at most one) implementation."""


class HParamError(GolfcError):
    """An unknown hyperparameter, a malformed --set, a value of the wrong type, or a duplicate declaration."""


class RecipeError(GolfcError):
    """A combination of plugins or settings that cannot work together."""


class PluginLoadError(GolfcError):
    """A plugin module that cannot be imported or has no hook implementations."""


class EmitError(GolfcError):
    """The assembled program is invalid: duplicate top-level names, a syntax error, an unstable minification."""


class OutputError(GolfcError):
    """An output path golfc cannot use: a file where a folder must go, a folder it cannot write into, or a new
    file that could not be installed (the previous files are then left as they were)."""
