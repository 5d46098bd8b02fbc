"""Leaky fixture (L1, never shipped): chunk k is trained on, then scored (train-then-score TTT)."""

from __future__ import annotations

from golfc import HParams, Impl, hookimpl


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("LEAKY_TTT_CHUNK", 256, "validation tokens per TTT chunk", ge=1)
    hp.float("LEAKY_TTT_LR", 0.05, "SGD learning rate", ge=0.0)
    hp.int("LEAKY_TTT_EPOCHS", 2, "passes over the chunks (last_epoch only)", ge=1)


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="leaky_ttt_runtime", symbols="score_train_first", requires=("golfc_plugins.plain_eval.runtime",))
