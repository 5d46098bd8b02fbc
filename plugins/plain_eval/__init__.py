"""Default eval adapter: non-overlapping TRAIN_SEQ_LEN windows, every token scored once."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="non-overlapping windows, per-position NLL and byte counts", evidence="baseline")


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.plain_eval.runtime", symbols="score_plain_windows")
