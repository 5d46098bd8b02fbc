"""plugins/relu2_mlp: y = proj(relu(fc(x))^2), proj zero-initialised."""

from __future__ import annotations

import torch

from golfc.testing import load_program


def test_relu_squared_forward():
    ns = load_program(overrides={"MODEL_DIM": "16", "MLP_MULT": "3", "DEVICE": "cpu"})
    torch.manual_seed(0)
    mlp = ns["ReluSquaredMLP"](ns["Hyperparameters"](), 0)
    assert mlp.fc.weight.shape == (48, 16) and mlp.proj.weight.shape == (16, 48)
    assert isinstance(mlp.fc, ns["CastedLinear"]) and mlp.fc.bias is None
    x = torch.randn(2, 5, 16)
    assert torch.all(mlp(x) == 0)  # zero-initialised output projection
    torch.nn.init.normal_(mlp.proj.weight)
    hidden = x @ mlp.fc.weight.T
    expected = torch.where(hidden > 0, hidden * hidden, torch.zeros_like(hidden)) @ mlp.proj.weight.T
    assert torch.allclose(mlp(x), expected, atol=1e-5)
