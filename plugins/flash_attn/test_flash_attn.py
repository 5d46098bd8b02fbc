"""plugins/flash_attn on the CPU: without FA3/FA4 the program stops at start-up in one line; with a stand-in module
(golfc/flash_attn_stand_in.py through golfc.testing, exact attention on flash-attn's (B, T, H, D) layout) the kernel
hands it the core's q/k/v without copies, returns SDPA's layout and values, keeps the slot contract and trains end
to end. The real kernels are compared with SDPA on a GPU: tests/gpu/test_flash_attn_parity.py."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import (
    check_contract,
    flash_attn_stand_in,
    flash_attn_stand_in_module,
    load_program,
    mixing_model,
    run_emitted,
)

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "DEVICE": "cpu"}


@pytest.fixture
def no_flash(monkeypatch):
    """Neither FA3 nor FA4 importable, whatever this machine has installed."""
    monkeypatch.setitem(sys.modules, "flash_attn_interface", None)
    monkeypatch.setitem(sys.modules, "flash_attn.cute", None)


@pytest.fixture
def fa3(monkeypatch):
    module = flash_attn_stand_in_module("flash_attn_interface")
    monkeypatch.setitem(sys.modules, "flash_attn_interface", module)
    return module


def reference(q, k, v):
    groups = q.size(1) // k.size(1)
    return F.scaled_dot_product_attention(q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1),
                                          is_causal=True)


@pytest.mark.parametrize(("impl", "named"), [("auto", "flash_attn_interface or flash_attn.cute"),
                                              ("fa3", "flash_attn_interface"), ("fa4", "flash_attn.cute")])
def test_without_the_module_the_program_stops_at_start_in_one_line(no_flash, capsys, impl, named):
    """The line window's WINDOW_KERNEL=flash gives too (one import for both: plugins/sdpa_attention/flash)."""
    with pytest.raises(SystemExit) as excinfo:
        load_program(("flash_attn",), env={**TINY, "FLASH_ATTN_IMPL": impl})
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == (
        f"error: plugin flash_attn (FLASH_ATTN_IMPL={impl}): cannot import {named}; expected FlashAttention-3 or -4 "
        "installed, or a build without flash_attn (the default sdpa_attention)\n")


def test_the_kernel_hands_flash_attn_the_core_layout_without_copies(fa3):
    ns = load_program(("flash_attn",), env=TINY)
    assert ns["attention_kernel"] is ns["flash_attention"] and ns["FLASH_ATTN_NAME"] == "flash_attn_interface"
    g = torch.Generator().manual_seed(0)
    # as the core calls it: (B, H, T, D) views of (B, T, H, D) memory, GQA 4 query heads on 2 kv heads
    q = torch.randn(2, 7, 4, 8, generator=g).transpose(1, 2)
    k, v = (torch.randn(2, 7, 2, 8, generator=g).transpose(1, 2) for _ in range(2))
    y = ns["flash_attention"](q, k, v, ns["Hyperparameters"](), 0)
    assert fa3.CALLS == [{"q": (2, 7, 4, 8), "k": (2, 7, 2, 8), "causal": True, "dtype": torch.float32,
                          "window_size": (-1, -1), "copied": False}]  # flash-attn's layout as it is: no copy
    assert y.shape == (2, 4, 7, 8) and y.transpose(1, 2).is_contiguous()  # q's memory order, as SDPA returns it
    torch.testing.assert_close(y, reference(q, k, v), atol=1e-5, rtol=1e-5)


def test_fa4_is_used_when_fa3_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "flash_attn_interface", None)
    fa4 = flash_attn_stand_in_module("flash_attn.cute")
    monkeypatch.setitem(sys.modules, "flash_attn.cute", fa4)
    ns = load_program(("flash_attn",), env=TINY)
    assert ns["FLASH_ATTN_NAME"] == "flash_attn.cute" and ns["FLASH_ATTN_FUNC"] is fa4.flash_attn_func


def test_the_model_forward_equals_the_sdpa_model(fa3):
    ns, base = load_program(("flash_attn",), env=TINY), load_program(env=TINY)
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = mixing_model(ns)(ids, ids, reduction="none")
        theirs = mixing_model(base)(ids, ids, reduction="none")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert len(fa3.CALLS) == 2  # one call per layer


def test_the_kernel_keeps_the_slot_contract(fa3):
    assert check_contract("attention_kernel", "flash_attn") == []


@pytest.mark.slow
def test_an_emitted_program_stops_without_flash_attn_and_trains_with_it(tmp_path, tiny_dataset):
    installed = any(importlib.util.find_spec(name) is not None for name in ("flash_attn_interface", "flash_attn"))
    if not installed:  # a machine with flash-attn installed would import it: the missing case is for the others
        missing = run_emitted(("flash_attn",), tiny_dataset, tmp_path / "missing", env={"PYTHONPATH": ""})
        assert missing.returncode == 2 and "step:" not in missing.stdout
        assert missing.stderr.strip().splitlines() == [
            "error: plugin flash_attn (FLASH_ATTN_IMPL=auto): cannot import flash_attn_interface or flash_attn.cute; "
            "expected FlashAttention-3 or -4 installed, or a build without flash_attn (the default sdpa_attention)"]
    stand_in = flash_attn_stand_in(tmp_path / "site")
    run = run_emitted(("flash_attn",), tiny_dataset, tmp_path / "run", env={"PYTHONPATH": str(stand_in)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.final_bpb is not None and run.final_bpb > 0
    source = (tmp_path / "run" / "train_gpt.src.py").read_text()
    assert "attention_kernel = flash_attention  # plugins/flash_attn" in source
