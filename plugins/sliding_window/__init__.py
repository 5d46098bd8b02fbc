"""Sliding-window evaluation: windows of EVAL_SEQ_LEN every EVAL_STRIDE tokens, each target scored once."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="score each target once, with at least EVAL_SEQ_LEN - EVAL_STRIDE tokens of context",
    evidence="2026-03-19_SlidingWindowEval (PR #50): 1.2244 -> 1.1925 (-0.032), eval 70 s on 8xH100",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("EVAL_SEQ_LEN", 0, "tokens per evaluation window (0: TRAIN_SEQ_LEN)", ge=0)
    hp.int("EVAL_STRIDE", 64, "tokens between window starts; each later window scores its last EVAL_STRIDE", ge=1)
    hp.int("EVAL_BATCH_SEQS", 32, "windows per forward pass on each rank", ge=1)



@hookimpl
def golfc_eval_windows() -> Impl:
    return Impl(module="golfc_plugins.sliding_window.runtime", symbols="sliding_eval_windows",
                requires=("golfc_plugins.plain_eval.runtime",))  # its sliding_windows
