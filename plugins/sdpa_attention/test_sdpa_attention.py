"""plugins/sdpa_attention: equal to hand-written causal softmax attention with GQA, on every CPU path."""

from __future__ import annotations

import math

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
