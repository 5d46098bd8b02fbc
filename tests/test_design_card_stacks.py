"""The design card's two commands build, and the five-plugin stack trains, adapts and scores on CPU.

The card's `slot,window` is built with sliding_window: SLOT adapts on a window's context, which plain windows
do not have (golfc refuses slot without a context-giving window plan).
"""

from __future__ import annotations

import pytest

from golfc.build import build_submission
from golfc.testing import run_emitted

STACK = ("window", "xsa", "bigram_hash", "sliding_window", "ttt")


@pytest.mark.parametrize("plugins", [("sliding_window", "slot", "window"), STACK])
def test_the_design_card_stacks_build(tmp_path, plugins):
    build = build_submission(plugins, {}, tmp_path)
    source = (build.out_dir / "train_gpt.src.py").read_text()
    for name in plugins:
        assert f"<golfc:plugins/{name}>" in source or f"plugins/{name}:" in source


@pytest.mark.slow
def test_the_five_plugin_stack_trains_adapts_and_scores_on_cpu(tmp_path, tiny_dataset):
    env = {"NUM_LAYERS": "3", "WINDOW_SIZE": "16", "WINDOW_ATTN_LAYERS": "1", "XSA_LAST_N": "2",
           "BIGRAM_VOCAB_SIZE": "128", "BIGRAM_DIM": "16", "EVAL_STRIDE": "32", "EVAL_BATCH_SEQS": "8",
           "TTT_CHUNK_TOKENS": "4096", "TTT_EPOCHS": "1", "TTT_BATCH_SEQS": "8"}  # 4 chunks of the 16,319 targets
    run = run_emitted(STACK, tiny_dataset, tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    for knob in ("window_attn_layers=(1,)", "xsa_last_n=2", "bigram_vocab_size=128", "eval_stride=32",
                 "ttt_chunk_tokens=4096"):
        assert knob in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
