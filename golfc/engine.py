"""Resolve a recipe: run the build-time hooks of the active plugins and decide who fills each slot.

The engine calls each plugin's implementation itself (rather than pluggy's fan-out) so that every
result is attributed to its plugin: conflicts name both plugins and the wiring block names its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from golfc.errors import GolfcError, PluginLoadError, RecipeError, SlotConflictError
from golfc.hparams import HParam, HParams
from golfc.plugins import (
    CORE_PLUGIN,
    DEFAULT_PLUGINS,
    CatalogEntry,
    GolfcPluginManager,
    discover,
    make_manager,
    one_line,
    plugin_info,
    register_plugin,
)
from golfc.recipe import Recipe
from golfc.slots import SLOTS, Cardinality, Impl, Slot


@dataclass(frozen=True)
class Binding:
    """One slot filled by one plugin's implementation."""

    slot: Slot
    plugin: str
    impl: Impl
    symbols: dict[str, str]  # wiring global -> run-time symbol


@dataclass
class Resolution:
    """Everything the emitter needs: active plugins, hyperparameters and slot bindings."""

    recipe: Recipe
    active: tuple[str, ...]
    hparams: HParams
    bindings: dict[str, list[Binding]] = field(default_factory=dict)  # slot name -> bindings (MANY: ordered)

    @property
    def requested(self) -> tuple[str, ...]:
        """The plugins the recipe adds to the baseline: those it names, less core and the defaults (naming a
        default changes only which conflicts are errors, so the program, lock and docstring stay the same)."""
        return tuple(p for p in self.recipe.plugins if p != CORE_PLUGIN and p not in DEFAULT_PLUGINS)

    def runtime_modules(self) -> list[tuple[str, str]]:
        """(plugin, module) pairs to inline, in section order: plugin order; within a plugin, what its
        implementations require comes before its own modules (a subclass needs its base defined)."""
        seen: dict[str, str] = {}
        for plugin in self.active:
            mine = [b for bindings in self.bindings.values() for b in bindings if b.plugin == plugin]
            for module in [m for b in mine for m in b.impl.requires] + [b.impl.module for b in mine]:
                seen.setdefault(module, plugin)
        return [(plugin, module) for module, plugin in seen.items()]


def _call_impl(hookimpl: pluggy.HookImpl, hook_name: str, available: dict[str, Any]) -> Any:
    """Call one implementation with the subset of arguments it declares; an exception that is not a
    GolfcError (a bug in the plugin) becomes one line naming the plugin and the hook."""
    try:
        return hookimpl.function(*[available[name] for name in hookimpl.argnames])
    except GolfcError:
        raise
    except Exception as exc:
        raise PluginLoadError(
            f"plugin {hookimpl.plugin_name}: {hook_name} raised {type(exc).__name__}: {one_line(str(exc))}"
        ) from exc


def _impls_by_plugin(pm: pluggy.PluginManager, hook_name: str) -> dict[str, pluggy.HookImpl]:
    caller = getattr(pm.hook, hook_name)
    return {pm.get_name(impl.plugin): impl for impl in caller.get_hookimpls()}


def collect_hparams(pm: pluggy.PluginManager, active: tuple[str, ...], recipe: Recipe) -> HParams:
    """Run every ``golfc_add_hparams`` in activation order, then apply ``--set`` overrides."""
    hp = HParams()
    impls = _impls_by_plugin(pm, "golfc_add_hparams")
    for plugin in active:
        if plugin in impls:
            hp.current_owner = plugin
            _call_impl(impls[plugin], "golfc_add_hparams", {"hp": hp})
    hp.current_owner = "core"
    hp.apply_overrides(recipe.overrides)
    return hp


def _claims(pm: pluggy.PluginManager, slot: Slot, active: tuple[str, ...], recipe: Recipe) -> list[Binding]:
    impls = _impls_by_plugin(pm, slot.hook_name)
    claims = []
    for plugin in active:
        if plugin not in impls:
            continue
        impl = _call_impl(impls[plugin], slot.hook_name, {"recipe": recipe})
        if impl is None:
            continue
        if not isinstance(impl, Impl):
            raise PluginLoadError(
                f"plugin {plugin}: {slot.hook_name} returned {type(impl).__name__}, expected golfc.Impl"
            )
        try:
            symbols = impl.bindings(slot)
        except ValueError as exc:
            raise PluginLoadError(f"plugin {plugin}: {exc}") from exc
        claims.append(Binding(slot, plugin, impl, symbols))
    return claims


def choose_bindings(slot: Slot, claims: list[Binding], requested: tuple[str, ...]) -> list[Binding]:
    """Apply the slot's cardinality: defaults yield to requested plugins; two requested claimants conflict."""
    if slot.cardinality is Cardinality.MANY:
        owners: dict[str, str] = {}
        for b in claims:
            for stage in b.impl.exclusive:
                if stage in owners:
                    raise SlotConflictError(f"plugins {owners[stage]} and {b.plugin} both claim {stage!r} of slot "
                                            f"{slot.name!r}, which one plugin may")
                owners[stage] = b.plugin
        return sorted(claims, key=lambda b: (b.impl.order, b.plugin))
    chosen = [b for b in claims if b.plugin in requested or b.plugin not in DEFAULT_PLUGINS]
    if not chosen:
        chosen = [b for b in claims if b.plugin in DEFAULT_PLUGINS]
    if len(chosen) > 1:
        names = " and ".join(b.plugin for b in chosen)
        raise SlotConflictError(f"plugins {names} both fill slot {slot.name!r}, which takes {slot.cardinality.value}")
    if not chosen and slot.cardinality is Cardinality.ONE:
        raise RecipeError(f"no plugin fills slot {slot.name!r}, which takes exactly one")
    return chosen


def _check_declared_conflicts(pm: pluggy.PluginManager, active: tuple[str, ...]) -> None:
    for plugin in active:
        for other in plugin_info(pm.get_plugin(plugin)).conflicts:
            if other in active:
                raise SlotConflictError(f"plugin {plugin} cannot be combined with {other}")


def resolve(recipe: Recipe, plugins_dir: Path | None = None) -> Resolution:
    """Load the recipe's plugins, collect hyperparameters, fill every slot and validate the result."""
    catalog = discover(plugins_dir)
    requested = tuple(p for p in recipe.plugins if p != CORE_PLUGIN)
    pm, active = make_manager(requested, catalog)
    _check_declared_conflicts(pm, active)
    hparams = collect_hparams(pm, active, recipe)
    resolution = Resolution(recipe=recipe, active=active, hparams=hparams)
    for slot in SLOTS:
        resolution.bindings[slot.name] = choose_bindings(slot, _claims(pm, slot, active, recipe), requested)
    validators = _impls_by_plugin(pm, "golfc_validate_recipe")
    for plugin in active:
        if plugin in validators:
            available = {"recipe": recipe, "hparams": hparams, "active": active, "bindings": resolution.bindings}
            _call_impl(validators[plugin], "golfc_validate_recipe", available)
    return resolution


def describe_hparam(param: HParam) -> dict[str, Any]:
    """One hyperparameter for ``golfc plugins --json``: name, type, default, doc and, if any, its choices."""
    described: dict[str, Any] = {"name": param.name, "type": param.kind, "default": param.default, "doc": param.doc}
    if param.choices:
        described["choices"] = list(param.choices)
    if param.bounds:
        described["range"] = " and ".join(f"{op} {limit!r}" for op, limit in param.bounds)
    return described


def describe_plugin(name: str, entry: CatalogEntry) -> dict[str, Any]:
    """Name, slots, hyperparameters and summary of one catalogue entry (for ``golfc plugins``)."""
    plugin = entry.load()
    pm = GolfcPluginManager()
    register_plugin(pm, name, entry, plugin)
    slots = [slot.name for slot in SLOTS if name in _impls_by_plugin(pm, slot.hook_name)]
    hp = HParams()
    if name != CORE_PLUGIN:  # core's knobs first, as in a build: a plugin's rules may name them
        from golfc import core_plugin

        core_plugin.golfc_add_hparams(hp)
    hp.current_owner = name
    impl = _impls_by_plugin(pm, "golfc_add_hparams").get(name)
    if impl is not None:
        _call_impl(impl, "golfc_add_hparams", {"hp": hp})
    info = plugin_info(plugin)
    return {
        "name": name,
        "slots": slots,
        "hparams": [describe_hparam(p) for p in hp.all() if p.owner == name],
        "summary": info.summary,
        "evidence": info.evidence,
        "default": entry.is_default,
        "origin": entry.origin,
    }
