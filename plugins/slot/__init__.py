"""Context-only SLOT: a per-window delta on the last hidden state, fitted on already-scored context only."""

from __future__ import annotations

from collections.abc import Mapping

from golfc import HParams, Impl, PluginInfo, hookimpl
from golfc.errors import RecipeError

GOLFC_PLUGIN = PluginInfo(
    summary="per window: delta [1, d] on the last hidden state, fitted on the window's context, then score",
    evidence="PR only: shared SLOT PR #1084 (-0.0008 to -0.009); context-only PRs #1306, #1333 (issue #1336)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SLOT_STEPS", 8, "optimizer steps on each window's delta", ge=0)
    hp.float("SLOT_LR", 0.005, "AdamW learning rate of the delta", ge=0.0)


@hookimpl
def golfc_validate_recipe(bindings: Mapping[str, list]) -> None:
    """SLOT fits each window's delta on the window's context: plain_eval's windows have none (each starts where
    the last one ended), so every delta would stay 0 and the build would score exactly like one without SLOT."""
    windows = bindings["eval_windows"][0].plugin
    if windows == "plain_eval":
        raise RecipeError("slot: plain_eval's evaluation windows have no context positions, so SLOT would never "
                          "adapt (every delta stays 0); add sliding_window (--plugins sliding_window,slot)")


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.slot.runtime", symbols="score_with_context_slot",
                requires=("golfc_plugins.plain_eval.runtime",))  # its scorer, for evaluations that do not adapt
