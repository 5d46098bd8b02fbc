"""Default evaluation: non-overlapping TRAIN_SEQ_LEN windows (eval_windows) and the plain scorer (eval_adapter)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="non-overlapping windows, per-position NLL and byte counts", evidence="baseline")


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.require_at_least(
        "VAL_BATCH_SIZE", "TRAIN_SEQ_LEN", factor=8, note="one window per rank and micro-batch, on 1 to 8 GPUs"
    )


@hookimpl
def golfc_eval_windows() -> Impl:
    return Impl(module="golfc_plugins.plain_eval.runtime", symbols="plain_windows")


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.plain_eval.runtime", symbols="score_plain_windows")
