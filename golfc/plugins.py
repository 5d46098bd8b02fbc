"""Plugin discovery and the per-build plugin manager.

Where plugins come from (the *catalogue*):

- built-ins: every package under ``plugins/`` (import name ``golfc_plugins``);
- third-party packages: the entry-point group ``golfc.plugins`` (``name = "pkg.module"``);
- loose files: ``--plugins-dir DIR`` loads each ``DIR/*.py`` as a plugin named after the file.

Activation is explicit: each build makes a fresh :class:`pluggy.PluginManager` holding the essential core
plugin, the default plugins (the reference baseline's parts) and exactly the plugins the recipe names.
Set ``GOLFC_TRACE_PLUGINS=1`` to print every hook call.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from golfc import PROJECT, hookspecs
from golfc.errors import GolfcError, PluginLoadError, UnknownPluginError
from golfc.slots import PluginInfo

ENTRY_POINT_GROUP = "golfc.plugins"
CORE_PLUGIN = "core"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sdpa_attention",
    "rope",
    "relu2_mlp",
    "unet_blocks",
    "muon",
    "flat_allreduce",
    "warmdown_schedule",
    "int8_quant",
    "zlib_compress",
    "token_stream_loader",
    "train_calibration",
    "plain_eval",
)
HOOK_PREFIX = "golfc_"


@dataclass(frozen=True)
class CatalogEntry:
    """Where a plugin can be loaded from."""

    name: str
    origin: str  # "builtin", "entry point <dist>" or "plugins-dir <path>"
    module_name: str | None = None  # importable module, for built-ins and entry points
    path: Path | None = None  # loose file, for --plugins-dir
    entry_point: importlib.metadata.EntryPoint | None = None

    @property
    def is_default(self) -> bool:
        return self.origin == "builtin" and self.name in DEFAULT_PLUGINS

    @property
    def where(self) -> str:
        """The plugin's file for a loose plugin, its origin otherwise (for error messages)."""
        return str(self.path) if self.path is not None else self.origin

    def load(self) -> Any:
        """Import the plugin object (a module, or whatever the entry point names)."""
        try:
            if self.entry_point is not None:
                return self.entry_point.load()
            if self.path is not None:
                return _load_loose_file(self.name, self.path)
            assert self.module_name is not None
            return importlib.import_module(self.module_name)
        except GolfcError:
            raise
        except Exception as exc:
            raise PluginLoadError(f"plugin {self.name} ({self.origin}) failed to import: {one_line(str(exc))}") from exc


def _load_loose_file(name: str, path: Path) -> ModuleType:
    module_name = f"golfc_local_plugins.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    parent = str(path.parent.resolve())
    if parent not in sys.path:
        sys.path.insert(0, parent)  # so the plugin's Impl(module="x_runtime") resolves beside it
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _builtin_entries() -> dict[str, CatalogEntry]:
    import golfc_plugins

    entries = {}
    for info in sorted(pkgutil.iter_modules(golfc_plugins.__path__), key=lambda i: i.name):
        if info.ispkg and not info.name.startswith("_"):
            entries[info.name] = CatalogEntry(info.name, "builtin", module_name=f"golfc_plugins.{info.name}")
    return entries


def _entry_point_entries() -> dict[str, CatalogEntry]:
    entries = {}
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep.dist, "name", "?") if ep.dist is not None else "?"
        entries[ep.name] = CatalogEntry(ep.name, f"entry point {dist}", entry_point=ep)
    return entries


def _plugins_dir_entries(plugins_dir: Path) -> dict[str, CatalogEntry]:
    if not plugins_dir.is_dir():
        raise PluginLoadError(f"--plugins-dir {plugins_dir}: expected a directory of plugin .py files")
    entries = {}
    for path in sorted(plugins_dir.glob("*.py")):
        if path.stem.startswith("_") or path.stem.endswith("_runtime"):
            continue  # private helpers and run-time faces are not plugins themselves
        entries[path.stem] = CatalogEntry(path.stem, f"plugins-dir {plugins_dir}", path=path)
    return entries


def discover(plugins_dir: Path | None = None) -> dict[str, CatalogEntry]:
    """The catalogue: built-ins, then entry points, then loose files; a later source may not shadow an earlier."""
    catalog = _builtin_entries()
    extra = _entry_point_entries()
    if plugins_dir is not None:
        extra.update(_plugins_dir_entries(plugins_dir))
    for name, entry in extra.items():
        if name in catalog or name == CORE_PLUGIN:
            first = catalog[name].origin if name in catalog else "core"
            raise PluginLoadError(f"plugin name {name!r} is provided by both {first} and {entry.origin}")
        catalog[name] = entry
    return catalog


class GolfcPluginManager(pluggy.PluginManager):
    """A pluggy manager that accepts only ``golfc_``-prefixed hook implementations."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        if os.environ.get("GOLFC_TRACE_PLUGINS"):
            self.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            self.enable_tracing()

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and not name.startswith(HOOK_PREFIX):
            raise PluginLoadError(
                f"hook implementation {name!r} in {plugin!r}: hook names must start with {HOOK_PREFIX!r}"
            )
        return opts


def one_line(text: str) -> str:
    """A possibly multi-line message (pluggy's, an exception's) as one line."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _hook_names() -> list[str]:
    return sorted(name for name in dir(hookspecs) if name.startswith(HOOK_PREFIX))


def _marked_hookimpls(plugin: Any) -> dict[str, Any]:
    """Attribute name -> routine for every ``@golfc.hookimpl``-marked routine of a plugin object."""
    marked = {}
    for attr in dir(plugin):
        try:
            value = getattr(plugin, attr)
        except Exception:  # a property of an entry-point object that fails: pluggy skips it too
            continue
        if inspect.isroutine(value) and isinstance(getattr(value, f"{PROJECT}_impl", None), dict):
            marked[attr] = value
    return marked


def _required_args(function: Any) -> list[str]:
    """Positional parameters without defaults: the arguments pluggy will pass by name."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in positional and p.default is p.empty]
    if names[:1] == ["self"] and "." in getattr(function, "__qualname__", ""):
        names = names[1:]  # a method looked up on a class: pluggy drops the instance argument too
    return names


def _hookimpl_problem(attr: str, function: Any, known: list[str]) -> str | None:
    """What is wrong with one marked routine (its name or its arguments), or None."""
    if not attr.startswith(HOOK_PREFIX):
        return f"hook implementation {attr!r}: hook names must start with {HOOK_PREFIX!r}"
    if attr not in known:
        close = difflib.get_close_matches(attr, known, n=1)
        return f"unknown hook {attr}" + (f"; did you mean {close[0]}?" if close else "")
    offered = list(inspect.signature(getattr(hookspecs, attr)).parameters)
    unknown = [arg for arg in _required_args(function) if arg not in offered]
    if unknown:
        return (
            f"{attr} takes argument {', '.join(repr(a) for a in unknown)}, which the hook does not pass "
            f"(it passes: {', '.join(offered)})"
        )
    return None


def check_hookimpls(name: str, where: str, plugin: Any) -> None:
    """Reject a plugin whose marked hooks have a wrong name or arguments, naming the plugin, hook and argument."""
    known = _hook_names()
    for attr, function in sorted(_marked_hookimpls(plugin).items()):
        problem = _hookimpl_problem(attr, function, known)
        if problem is not None:
            raise PluginLoadError(f"plugin {name} ({where}): {problem}")


def register_plugin(pm: GolfcPluginManager, name: str, entry: CatalogEntry, plugin: Any) -> None:
    """Check a plugin's hook implementations, then register it; every failure is one line naming the plugin."""
    check_hookimpls(name, entry.where, plugin)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"plugin {name} ({entry.where}): {one_line(str(exc))}") from exc


def unknown_plugin_error(name: str, catalog: dict[str, CatalogEntry]) -> UnknownPluginError:
    close = difflib.get_close_matches(name, list(catalog), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `golfc plugins` lists them"
    return UnknownPluginError(f"unknown plugin {name!r}{hint}")


def plugin_info(plugin: Any) -> PluginInfo:
    """The plugin's ``GOLFC_PLUGIN`` metadata, or one derived from its docstring."""
    info = getattr(plugin, "GOLFC_PLUGIN", None)
    if isinstance(info, PluginInfo):
        return info
    doc = (getattr(plugin, "__doc__", None) or "").strip().splitlines()
    return PluginInfo(summary=doc[0] if doc else "")


def make_manager(
    requested: tuple[str, ...], catalog: dict[str, CatalogEntry]
) -> tuple[GolfcPluginManager, tuple[str, ...]]:
    """A fresh manager with core, the defaults and ``requested``; returns it and the active names in order."""
    from golfc import core_plugin

    pm = GolfcPluginManager()
    pm.register(core_plugin, name=CORE_PLUGIN)
    active = [CORE_PLUGIN]
    for name in DEFAULT_PLUGINS + tuple(requested):
        if name in active:
            continue
        if name not in catalog:
            raise unknown_plugin_error(name, catalog)
        register_plugin(pm, name, catalog[name], catalog[name].load())
        active.append(name)
    _check_pending(pm)
    return pm, tuple(active)


def _check_pending(pm: GolfcPluginManager) -> None:
    """Reject implementations of hooks that do not exist (typos), naming the closest real hook."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = _hook_names()
        bad = next((n for n in dir(pm.hook) if n.startswith(HOOK_PREFIX) and n not in known), "")
        close = difflib.get_close_matches(bad, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise PluginLoadError(f"unknown hook {bad or one_line(str(exc))}{hint}") from exc
