"""window: the mask, windowed layers against a hand-written masked softmax, full layers untouched, list knob."""

from __future__ import annotations

import sys

import pytest
import torch

from golfc.testing import flash_attn_stand_in_module, load_program, run_emitted

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


# FlexAttention on the CPU (torch >= 2.5): forward only (it has no CPU backward), 128 x 128 blocks, so the
# sequences below span several blocks and the window skips some of them.
FLEX_T, FLEX_WINDOW = 384, 100


def test_the_flex_kernel_matches_the_masked_sdpa_reference_eagerly_and_compiled(ns):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, FLEX_T, 16), torch.randn(2, 2, FLEX_T, 16), torch.randn(2, 2, FLEX_T, 16)
    expected = ns["window_sdpa_attention"](q, k, v, FLEX_WINDOW)
    torch.testing.assert_close(expected, reference_attention(q, k, v, FLEX_WINDOW), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ns["window_flex_attention"](q, k, v, FLEX_WINDOW), expected, atol=1e-5, rtol=1e-5)
    compiled = torch.compile(ns["window_flex_attention"], fullgraph=True, dynamic=False)
    torch.testing.assert_close(compiled(q, k, v, FLEX_WINDOW), expected, atol=1e-5, rtol=1e-5)


def test_the_block_mask_skips_blocks_outside_the_window_and_is_built_once_per_shape(ns):
    ns["WINDOW_BLOCK_MASKS"].clear()
    first = ns["window_block_mask"](FLEX_T, FLEX_WINDOW, torch.device("cpu"))
    again = ns["window_block_mask"](FLEX_T, FLEX_WINDOW, torch.device("cpu"))
    assert list(ns["WINDOW_BLOCK_MASKS"]) == [(FLEX_T, FLEX_WINDOW, "cpu")]
    assert again.kv_indices is first.kv_indices  # cached, not rebuilt
    # query block 2 (rows 256..383) sees keys 157..383: blocks 1 and 2 only; block 0 is skipped
    partial = first.kv_num_blocks[0, 0].tolist()
    full = first.full_kv_num_blocks[0, 0].tolist()
    assert [p + f for p, f in zip(partial, full)] == [1, 2, 2]
    ns["window_block_mask"](2 * 128, FLEX_WINDOW, torch.device("cpu"))
    assert len(ns["WINDOW_BLOCK_MASKS"]) == 2


def test_a_compiled_window_model_builds_its_block_mask_once_and_matches_the_eager_masked_model(tmp_path):
    """fullgraph=True traces the flex path inside the model; the mask is built once at trace time, not per forward."""
    env = {**TINY, "TRAIN_SEQ_LEN": str(FLEX_T), "TRAIN_BATCH_TOKENS": str(8 * FLEX_T), "WINDOW_SIZE": str(FLEX_WINDOW),
           "WINDOW_KERNEL": "flex"}
    flex_ns = load_program(("window",), env=env)
    torch.manual_seed(0)
    model = flex_ns["GPT"](flex_ns["Hyperparameters"]())
    for block in model.stack.blocks:
        torch.nn.init.normal_(block.attn.proj.weight, std=0.3)
    ids = torch.randint(0, 64, (2, FLEX_T))
    built = []
    create = flex_ns["create_block_mask"]
    flex_ns["create_block_mask"] = lambda *a, **kw: built.append(a[3]) or create(*a, **kw)
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    with torch.no_grad():
        flex_ns["WINDOW_BLOCK_MASKS"].clear()
        outs = [compiled(ids, ids, reduction="none") for _ in range(3)]
        h_sdpa = flex_ns["Hyperparameters"]()
        h_sdpa.window_kernel = "sdpa"
        for block in model.stack.blocks:
            block.attn.h = h_sdpa
        expected = model(ids, ids, reduction="none")
    assert built == [FLEX_T]
    for out in outs:
        torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_auto_picks_masked_sdpa_on_the_cpu_and_flash_only_when_importable(ns):
    h = ns["Hyperparameters"]()
    q = torch.zeros(1, 2, 8, 4)
    assert h.window_kernel == "auto" and ns["window_kernel_name"](q, h) == "sdpa"
    h.window_kernel = "flex"
    assert ns["window_kernel_name"](q, h) == "flex"


def test_window_kernel_flash_without_flash_attn_is_one_line_and_exit_2(monkeypatch, capsys):
    """The same line as plugin flash_attn's (one import for both: plugins/sdpa_attention/flash)."""
    monkeypatch.setitem(sys.modules, "flash_attn_interface", None)  # neither importable, whatever is installed
    monkeypatch.setitem(sys.modules, "flash_attn.cute", None)
    with pytest.raises(SystemExit) as excinfo:
        load_program(("window",), env={**TINY, "WINDOW_KERNEL": "flash"})
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == (
        "error: plugin window (WINDOW_KERNEL=flash): cannot import flash_attn_interface or flash_attn.cute; "
        "expected FlashAttention-3 or -4 installed, or WINDOW_KERNEL=auto, flex or sdpa\n")
    assert load_program(("window",), env=TINY)["WINDOW_FLASH_FUNC"] is None  # auto: no error, FlexAttention or SDPA


def test_window_kernel_flash_hands_flash_attn_its_window_on_the_core_layout(monkeypatch):
    """With a stand-in FA3 (golfc.testing, exact attention on flash-attn's layout): window_size=(WINDOW_SIZE - 1, 0),
    the (B, T, H, D) memory behind the core's views, and the masked-SDPA result."""
    fa3 = flash_attn_stand_in_module("flash_attn_interface")
    monkeypatch.setitem(sys.modules, "flash_attn_interface", fa3)
    flash_ns = load_program(("window",), env={**TINY, "WINDOW_KERNEL": "flash"})
    assert flash_ns["WINDOW_FLASH_FUNC"] is fa3.flash_attn_func
    torch.manual_seed(0)
    q = torch.randn(2, 16, 4, 8).transpose(1, 2)  # (B, H, T, D) views of (B, T, H, D) memory, as the core's
    k, v = (torch.randn(2, 16, 2, 8).transpose(1, 2) for _ in range(2))
    y = flash_ns["window_or_full_attention"](q, k, v, flash_ns["Hyperparameters"](), 1)
    assert [(c["q"], c["window_size"], c["copied"]) for c in fa3.CALLS] == [((2, 16, 4, 8), (3, 0), False)]
    assert y.transpose(1, 2).is_contiguous()
    torch.testing.assert_close(y, reference_attention(q, k, v, 4), atol=1e-5, rtol=1e-5)
