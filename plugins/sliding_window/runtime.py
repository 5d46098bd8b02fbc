# ==================================================================================================
# plugins/sliding_window: evaluation windows of EVAL_SEQ_LEN tokens every EVAL_STRIDE tokens; the first
# window scores all its targets, every later one only its last EVAL_STRIDE, so each target is scored
# exactly once with at least EVAL_SEQ_LEN - EVAL_STRIDE tokens of context (PR #50). Any scorer uses them.
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import sliding_windows  # editors and tests only: blanked when emitted

from golfc.runtime.data import EvalWindows
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def sliding_eval_windows(val_tokens, h, ctx):
    """Windows of EVAL_SEQ_LEN (0: TRAIN_SEQ_LEN) every EVAL_STRIDE, EVAL_BATCH_SEQS per forward, padded."""
    window = h.eval_seq_len or h.train_seq_len
    if h.eval_stride > window:
        raise RunInputError(f"EVAL_STRIDE={h.eval_stride} is longer than the window EVAL_SEQ_LEN={window}")
    spans = sliding_windows(val_tokens.numel() - 1, window, h.eval_stride)
    return EvalWindows(min(window, val_tokens.numel() - 1), spans, h.eval_batch_seqs, pad=True)
