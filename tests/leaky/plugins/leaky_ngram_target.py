"""Leaky fixture (L7, never shipped): a bigram cache mixed in with a weight keyed on the realized target."""

from __future__ import annotations

from golfc import HParams, Impl, hookimpl


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("LEAKY_NGRAM_LAMBDA", 0.3, "weight of the cache", ge=0.0, le=1.0)


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="leaky_ngram_runtime", symbols="score_target_keyed")
