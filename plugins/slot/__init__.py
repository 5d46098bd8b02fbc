"""Context-only SLOT: a per-window delta on the last hidden state, fitted on already-scored context only."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="per window: delta [1, d] on the last hidden state, fitted on the window's context, then score",
    evidence="PR only: shared SLOT PR #1084 (-0.0008 to -0.009); context-only PRs #1306, #1333 (issue #1336)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SLOT_STEPS", 8, "optimizer steps on each window's delta", ge=0)
    hp.float("SLOT_LR", 0.005, "AdamW learning rate of the delta", ge=0.0)


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.slot.runtime", symbols="score_with_context_slot",
                requires=("golfc_plugins.plain_eval.runtime",))  # its scorer, for evaluations that do not adapt
