"""fit_budget: over 16,000,000 bytes, prune +-1 values, then lower tensor classes' bits one at a time."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="fit the budget: prune the cheapest +-1 values; if that is not enough, lower FIT_BUDGET_LOWER classes "
    "by one bit each, in order, and prune again",
    evidence="selective +-1 pruning (tricks.md row 33); int5 MLP to pay for a layer (2026-03-20_10L_Int5MLP)",
    conflicts=("prune_pm1",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("PRUNE_PM1_STEPS", 12, "binary-search steps of the +-1 pruning (each compresses a candidate once)", ge=1)
    hp.str("FIT_BUDGET_LOWER", "mlp,attn", "tensor classes (embed, attn, mlp, other) lowered one bit each, in order, "
           "when pruning alone does not fit")


@hookimpl
def golfc_budget_fitter() -> Impl:
    return Impl(module="golfc_plugins.fit_budget.runtime", symbols="fit_budget",
                requires=("golfc_plugins.prune_pm1.runtime",))
