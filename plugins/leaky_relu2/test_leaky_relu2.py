"""plugins/leaky_relu2: the formula, its gradient, identity at init, the same forward in the adapting eval, e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

TINY = {"MODEL_DIM": "16", "MLP_MULT": "3", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("leaky_relu2",), env=TINY)


def test_it_fills_the_mlp_slot(ns):
    assert ns["MLP"] is ns["LeakyReluSquaredMLP"]


def test_leaky_relu_squared_forward_and_identity_at_init(ns):
    torch.manual_seed(0)
    mlp = ns["LeakyReluSquaredMLP"](ns["Hyperparameters"](), 0)
    assert mlp.fc.weight.shape == (48, 16) and mlp.proj.weight.shape == (16, 48) and mlp.fc.bias is None
    x = torch.randn(2, 5, 16)
    assert torch.all(mlp(x) == 0)  # zero-initialised output projection: the block starts as the identity
    torch.nn.init.normal_(mlp.proj.weight)
    pre = x @ mlp.fc.weight.T
    hidden = torch.where(pre > 0, pre * pre, 0.25 * pre * pre)  # (0.5 * pre)^2 below zero
    torch.testing.assert_close(mlp(x), hidden @ mlp.proj.weight.T)


def test_the_negative_side_keeps_a_gradient(ns):
    pre = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    out = ns["leaky_relu_square"](pre, 0.5)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), torch.tensor([1.0, 0.0625, 0.0, 0.25, 4.0]))
    torch.testing.assert_close(pre.grad, torch.tensor([-1.0, -0.25, 0.0, 1.0, 4.0]))  # 2*s^2*pre, 2*pre


def test_negative_slope_is_a_knob():
    ns = load_program(("leaky_relu2",), env={**TINY, "NEGATIVE_SLOPE": "0.25"})
    mlp = ns["LeakyReluSquaredMLP"](ns["Hyperparameters"](), 0)
    assert mlp.slope == 0.25


def test_the_adapting_eval_runs_the_leaky_mlp():
    check_adapting_eval_uses_plugin(("leaky_relu2",))


@pytest.mark.slow
def test_an_emitted_program_with_leaky_relu2_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("leaky_relu2",), tiny_dataset, tmp_path, env={"MLP_MULT": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "negative_slope=0.5" in run.stdout and "mlp_mult=3" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
