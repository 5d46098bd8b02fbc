"""Leaky fixture (L12, never shipped): a SLOT delta per window fitted on the targets it then scores."""

from __future__ import annotations

from golfc import HParams, Impl, hookimpl


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("LEAKY_SLOT_STEPS", 4, "AdamW steps on each delta", ge=0)
    hp.float("LEAKY_SLOT_LR", 0.05, "AdamW learning rate of the delta", ge=0.0)


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="leaky_slot_runtime", symbols="score_scored_delta", requires=("golfc_plugins.plain_eval.runtime",))
