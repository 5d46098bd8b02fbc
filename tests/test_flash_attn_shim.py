"""bench/flash_attn_shim: the FA3 stand-in that lets record scripts run without FlashAttention-3 computes FA3's
attention (causal, sliding window, GQA, packed variable-length sequences) and its gradients. It is a thin re-export of
golfc/flash_attn_stand_in.py, the one stand-in, which golfc's CPU tests use through golfc.testing (checked last)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

SHIM = Path(__file__).resolve().parent.parent / "bench" / "flash_attn_shim" / "flash_attn_interface.py"


@pytest.fixture(scope="module")
def fa():
    """The shim imported once per process under its own name (its custom ops register once, as in a record)."""
    if "flash_attn_interface" not in sys.modules:
        spec = importlib.util.spec_from_file_location("flash_attn_interface", SHIM)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    assert Path(sys.modules["flash_attn_interface"].__file__) == SHIM
    return sys.modules["flash_attn_interface"]


def naive(q, k, v, causal=True, left=-1):
    """q (T, H, D), k and v (T, Hkv, D): attention written out, each query head reading its key group."""
    T, H, D = q.shape
    k, v = (t.repeat_interleave(H // t.size(1), dim=1) for t in (k, v))
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(D)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    keep = (j <= i) if causal else torch.ones(T, T, dtype=torch.bool)
    if left >= 0:
        keep = keep & (j >= i - left)
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)


def test_dense_attention_is_causal_gqa_and_windowed_like_fa3(fa):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 12, 4, 8), torch.randn(2, 12, 2, 8), torch.randn(2, 12, 2, 8)
    out = fa.flash_attn_func(q, k, v, causal=True)
    assert out.shape == (2, 12, 4, 8)
    for b in range(2):
        torch.testing.assert_close(out[b], naive(q[b], k[b], v[b]), rtol=1e-5, atol=1e-5)
    windowed = fa.flash_attn_func(q, k, v, causal=True, window_size=(3, 0))
    torch.testing.assert_close(windowed[1], naive(q[1], k[1], v[1], left=3), rtol=1e-5, atol=1e-5)


def test_varlen_attends_within_each_sequence_and_its_gradients_match(fa):
    torch.manual_seed(1)
    lengths = [5, 1, 9, 3]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    q, k, v = (torch.randn(sum(lengths), h, 8, dtype=torch.float64, requires_grad=True) for h in (4, 2, 2))
    out = fa.flash_attn_varlen_func(q, k, v, cu, cu, max(lengths), max(lengths), causal=True)
    expected = torch.cat([naive(q[a:b], k[a:b], v[a:b]) for a, b in zip(cu.tolist(), cu.tolist()[1:])])
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(expected, (q, k, v), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_varlen_traces_whole_under_torch_compile(fa):
    torch.manual_seed(2)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    q, k, v = torch.randn(10, 2, 8), torch.randn(10, 2, 8), torch.randn(10, 2, 8)
    fn = torch.compile(lambda q, k, v: fa.flash_attn_varlen_func(q, k, v, cu, cu, 6, 6, causal=True) * 2,
                       backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(fn(q, k, v), 2 * fa.flash_attn_varlen_func(q, k, v, cu, cu, 6, 6, causal=True))


def test_varlen_queries_shorter_than_their_keys_see_the_keys_up_to_their_end_aligned_position(fa):
    """FA3 aligns a sequence's queries to the end of its keys (a decode-style chunk): query i of tq sees keys
    j <= i + tk - tq."""
    torch.manual_seed(3)
    cu_q, cu_k = torch.tensor([0, 2, 5], dtype=torch.int32), torch.tensor([0, 6, 9], dtype=torch.int32)
    q, k, v = torch.randn(5, 2, 4, dtype=torch.float64), torch.randn(9, 2, 4, dtype=torch.float64), torch.randn(
        9, 2, 4, dtype=torch.float64)
    out = fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 3, 6, causal=True)
    for (a, b), (c, d) in zip([(0, 2), (2, 5)], [(0, 6), (6, 9)]):
        tq, tk = b - a, d - c
        scores = torch.einsum("qhd,khd->hqk", q[a:b], k[c:d]) / 2.0
        allowed = torch.arange(tk)[None, :] <= torch.arange(tq)[:, None] + (tk - tq)
        expected = torch.einsum("hqk,khd->qhd", scores.masked_fill(~allowed, float("-inf")).softmax(-1), v[c:d])
        torch.testing.assert_close(out[a:b], expected)


def test_the_shim_is_golfcs_one_stand_in_with_fa3s_defaults(fa):
    """bench/flash_attn_shim re-exports golfc/flash_attn_stand_in.py (the implementation golfc's tests use too):
    the output only, contiguous (B, T, H, D) as FA3 writes it, nothing recorded."""
    implementation = SHIM.parent.parent.parent / "golfc" / "flash_attn_stand_in.py"
    assert fa.flash_attn_func.__code__.co_filename == str(implementation)
    assert fa.flash_attn_varlen_func.__code__.co_filename == str(implementation)
    assert fa.CALLS is None and fa.RETURN_LSE is False
    q, k, v = torch.randn(1, 6, 4, 8), torch.randn(1, 6, 2, 8), torch.randn(1, 6, 2, 8)
    out = fa.flash_attn_func(q, k, v, causal=True)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 6, 4, 8) and out.is_contiguous()


def test_golfc_testings_module_records_calls_returns_the_lse_and_shares_the_ops(fa):
    """golfc.testing's module of the same file (loaded again in this process: its varlen ops are the ones already
    registered) records each call and returns (out, lse) as FA4 does; the window and GQA math are the shim's."""
    from golfc.testing import flash_attn_stand_in_module

    module = flash_attn_stand_in_module("flash_attn.cute")
    torch.manual_seed(4)
    q, k, v = torch.randn(2, 10, 4, 8), torch.randn(2, 10, 2, 8), torch.randn(2, 10, 2, 8)
    out, lse = module.flash_attn_func(q, k, v, causal=True, window_size=(3, 0))
    assert module.CALLS == [{"q": (2, 10, 4, 8), "k": (2, 10, 2, 8), "causal": True, "dtype": torch.float32,
                             "window_size": (3, 0), "copied": False}]
    torch.testing.assert_close(out, fa.flash_attn_func(q, k, v, causal=True, window_size=(3, 0)))
    kr = k.repeat_interleave(2, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, kr) / math.sqrt(8)
    i, j = torch.arange(10)[:, None], torch.arange(10)[None, :]
    expected_lse = scores.masked_fill(~((j <= i) & (j >= i - 3)), float("-inf")).logsumexp(-1)
    torch.testing.assert_close(lse, expected_lse)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    packed = module.flash_attn_varlen_func(q[0], k[0], v[0], cu, cu, 6, 6, causal=True)
    torch.testing.assert_close(packed, fa.flash_attn_varlen_func(q[0], k[0], v[0], cu, cu, 6, 6, causal=True))
    with pytest.raises(ValueError, match=r"expected q \(B, T, H, D\), k and v \(B, S, Hkv, D\)"):
        module.flash_attn_func(q, k[..., :4], v, causal=True)
