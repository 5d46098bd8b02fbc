"""plugins/sdpa_attention: equal to hand-written causal softmax attention with GQA, on every CPU path; its kernels
helper (masked SDPA, FlexAttention block masks and the flash-attn import that window, varlen and flash_attn share)."""

from __future__ import annotations

import importlib
import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
from golfc_plugins.sdpa_attention import SDPA_CHOICES

from golfc.testing import load_program


def reference(q, k, v):
    groups = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    T = q.size(2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


class H:
    def __init__(self, backend):
        self.sdpa_backend = backend


@pytest.fixture(scope="module")
def ns():
    return load_program(overrides={"DEVICE": "cpu"})


@pytest.mark.parametrize("backend", ["auto", "math"])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_matches_causal_softmax_attention(ns, backend, kv_heads):
    torch.manual_seed(0)
    q = torch.randn(2, 4, 7, 8)
    k, v = torch.randn(2, kv_heads, 7, 8), torch.randn(2, kv_heads, 7, 8)
    y = ns["sdpa_attention"](q, k, v, H(backend))
    assert y.shape == q.shape
    torch.testing.assert_close(y, reference(q, k, v), atol=1e-5, rtol=1e-5)


def test_expanded_kv_path_for_kernels_without_gqa(ns):
    ns = load_program(overrides={"DEVICE": "cpu"})
    ns["SDPA_HAS_GQA"] = False  # as on torch < 2.5
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 6, 5, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    torch.testing.assert_close(ns["sdpa_attention"](q, k, v, H("auto")), reference(q, k, v), atol=1e-5, rtol=1e-5)


def test_unknown_backend_is_refused_before_the_program_runs(monkeypatch, capsys):
    """The kernel trusts h.sdpa_backend: the declared choices stop any other value at build and at start-up."""
    monkeypatch.setenv("SDPA_BACKEND", "fast")
    with pytest.raises(SystemExit) as excinfo:
        load_program(overrides={"DEVICE": "cpu"})
    assert excinfo.value.code == 2
    assert "SDPA_BACKEND='fast': expected one of auto, cudnn, flash, efficient, math" in capsys.readouterr().err
    monkeypatch.delenv("SDPA_BACKEND")
    assert set(SDPA_CHOICES) == {"auto", *load_program(overrides={"DEVICE": "cpu"})["SDPA_BACKENDS"]}


# plugins/sdpa_attention/masks.py and flash.py: the pieces the masked kernels (window, varlen) and the flash-attn
# kernels (window, flash_attn) share; inlined only where one of them requires it, never into the baseline.
SHARED = {"masks": ("window", "varlen"), "flash": ("window", "flash_attn")}  # module -> the plugins requiring it


def test_the_shared_modules_stay_within_a_runtime_budget_and_out_of_the_baseline(ns):
    assert "masked_sdpa_attention" not in ns and "flash_attn_import" not in ns
    for module, plugins in SHARED.items():
        lines = len(Path(__file__).with_name(f"{module}.py").read_text().splitlines())
        assert lines <= 300  # the budget of a plugin's runtime.py (tests/test_meta.py)
        for plugin in ("window", "varlen", "flash_attn"):
            hook = importlib.import_module(f"golfc_plugins.{plugin}").golfc_attention_kernel
            assert (f"golfc_plugins.sdpa_attention.{module}" in hook().requires) == (plugin in plugins)
    assert load_program(("varlen",), overrides={"DEVICE": "cpu"})["masked_sdpa_attention"] is not None


def test_a_rules_dense_mask_per_row_and_shared_and_its_masked_sdpa():
    from golfc_plugins.sdpa_attention import masks

    def rule(b, h, q_idx, kv_idx):  # causal, and row 1 sees only even keys
        return (kv_idx <= q_idx) & ((b == 0) | (kv_idx % 2 == 0))

    shared = masks.rule_dense_mask(lambda b, h, q, kv: kv <= q, 5, "cpu")
    assert shared.shape == (5, 5) and torch.equal(shared, torch.ones(5, 5, dtype=torch.bool).tril())
    rows = masks.rule_dense_mask(rule, 5, "cpu", rows=2)
    assert rows.shape == (2, 1, 5, 5) and torch.equal(rows[0, 0], shared)
    assert rows[1, 0, 4].tolist() == [True, False, True, False, True]
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    torch.testing.assert_close(masks.masked_sdpa_attention(q, k, v, shared), reference(q, k, v), atol=1e-5, rtol=1e-5)
    y = masks.masked_sdpa_attention(q, k, v, rows)
    torch.testing.assert_close(y[0], reference(q, k, v)[0], atol=1e-5, rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager FlexAttention warns that it is the unfused reference
        flex = masks.masked_flex_attention(q, k, v, masks.rule_block_mask(rule, 5, "cpu", rows=2))
    torch.testing.assert_close(flex, y, atol=1e-5, rtol=1e-5)


def test_one_flash_attn_import_tries_fa3_then_fa4(monkeypatch, capsys):
    from golfc_plugins.sdpa_attention import flash

    from golfc.testing import flash_attn_stand_in_module

    monkeypatch.setitem(sys.modules, "flash_attn_interface", None)
    monkeypatch.setitem(sys.modules, "flash_attn.cute", None)
    assert flash.flash_attn_import("auto") == (None, None)
    with pytest.raises(SystemExit) as excinfo:
        flash.flash_attn_required("fa3", "plugin p (P_KNOB=x)", "P_KNOB=y")
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == ("error: plugin p (P_KNOB=x): cannot import flash_attn_interface; expected "
                                       "FlashAttention-3 or -4 installed, or P_KNOB=y\n")
    fa4 = flash_attn_stand_in_module("flash_attn.cute")
    monkeypatch.setitem(sys.modules, "flash_attn.cute", fa4)
    assert flash.flash_attn_import("auto") == ("flash_attn.cute", fa4.flash_attn_func)
    assert flash.flash_attn_import("fa3") == (None, None)
    fa3 = flash_attn_stand_in_module("flash_attn_interface")
    monkeypatch.setitem(sys.modules, "flash_attn_interface", fa3)
    assert flash.flash_attn_required("auto", "unused", "unused") == ("flash_attn_interface", fa3.flash_attn_func)
