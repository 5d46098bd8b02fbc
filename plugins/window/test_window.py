"""window: the mask, windowed layers against a hand-written masked softmax, full layers untouched, list knob."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted

TINY = {"NUM_LAYERS": "3", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "WINDOW_SIZE": "4", "WINDOW_ATTN_LAYERS": "1", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("window",), env=TINY)


def reference_attention(q, k, v, window):
    groups = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-1, -2) / q.size(-1) ** 0.5
    T = q.size(2)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    scores = scores.masked_fill(~((j <= i) & (i - j < window)), float("-inf"))
    return scores.softmax(-1) @ v


def test_the_mask_is_causal_and_window_wide(ns):
    mask = ns["window_mask"](6, 3, torch.device("cpu"))
    assert mask.sum(1).tolist() == [1, 2, 3, 3, 3, 3]
    assert not mask.triu(1).any() and mask[5, 3] and not mask[5, 2]


def test_window_layers_match_a_masked_softmax_and_other_layers_the_full_kernel(ns):
    h = ns["Hyperparameters"]()
    assert h.window_attn_layers == (1,) and h.window_size == 4
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 16, 8), torch.randn(2, 2, 16, 8), torch.randn(2, 2, 16, 8)
    torch.testing.assert_close(ns["window_or_full_attention"](q, k, v, h, 1), reference_attention(q, k, v, 4))
    torch.testing.assert_close(ns["window_or_full_attention"](q, k, v, h, 0), ns["sdpa_attention"](q, k, v, h))
    torch.testing.assert_close(ns["window_or_full_attention"](q, k, v, h, 0), reference_attention(q, k, v, 16))


def test_the_layer_list_is_read_from_the_environment_and_checked(ns):
    h = load_program(("window",), env={**TINY, "WINDOW_ATTN_LAYERS": "0,2"})["Hyperparameters"]
    assert h.window_attn_layers == (0, 2)
    assert load_program(("window",), env={**TINY, "WINDOW_ATTN_LAYERS": ""})["Hyperparameters"].window_attn_layers == ()


def test_a_window_model_is_causal(ns):
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    for block in model.stack.blocks:
        torch.nn.init.normal_(block.attn.proj.weight, std=0.3)
    ids = torch.randint(0, 64, (1, 16))
    other = ids.clone()
    other[0, 9:] = (other[0, 9:] + 1) % 64
    a, b = model(ids, ids, reduction="none"), model(other, ids, reduction="none")
    assert torch.equal(a[0, :9], b[0, :9]) and not torch.equal(a[0, 9:], b[0, 9:])


@pytest.mark.slow
def test_an_emitted_program_with_window_attention_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("window",), tiny_dataset, tmp_path, env={"WINDOW_SIZE": "16", "WINDOW_ATTN_LAYERS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "window_attn_layers=(1,)" in run.stdout and run.final_bpb is not None


@pytest.mark.slow
def test_a_malformed_layer_list_is_one_line_and_exit_2(tmp_path, tiny_dataset):
    run = run_emitted(("window",), tiny_dataset, tmp_path, env={"WINDOW_ATTN_LAYERS": "1,x"})
    assert run.returncode == 2
    expected = "error: WINDOW_ATTN_LAYERS='1,x': expected comma-separated integers (2,4,6; empty for none)"
    assert run.stderr.strip() == expected
    negative = run_emitted(("window",), tiny_dataset, tmp_path / "neg", env={"WINDOW_ATTN_LAYERS": "1,-2"})
    assert negative.returncode == 2 and "WINDOW_ATTN_LAYERS=1,-2: expected WINDOW_ATTN_LAYERS >= 0" in negative.stderr
