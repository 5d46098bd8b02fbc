"""plugins/fit_budget: pruning first, then classes one bit lower in the declared order, each step logged."""

from __future__ import annotations

import torch

from golfc.testing import load_program


def obj_and_size(ns):
    torch.manual_seed(0)
    w = {"stack.blocks.0.mlp.fc.weight": torch.randn(32, 64), "stack.blocks.0.attn.c_q.weight": torch.randn(32, 64)}
    obj, _ = ns["quantize_model"](None, w, ns["Hyperparameters"](), None, None)

    def size(o):  # a stand-in for the compressed size: bits of every stored value, and non-zero count
        bits = sum(o["bits"][n] * q.numel() for n, q in o["q"].items())
        return bits + int(sum((q != 0).sum() for q in o["q"].values()))
    return obj, size


def test_lowering_requantizes_the_stored_values():
    ns = load_program(("int6", "fit_budget"), env={"QUANT_KEEP_FLOAT_NUMEL": "0"})
    obj, _ = obj_and_size(ns)
    low = ns["fit_budget_lower"](obj, "mlp")
    name = "stack.blocks.0.mlp.fc.weight"
    assert low["bits"][name] == 5 and obj["bits"][name] == 6 and int(low["q"][name].abs().max()) <= 15
    before = obj["q"][name].float() * obj["scale"][name].float()[:, None]
    after = low["q"][name].float() * low["scale"][name].float()[:, None]
    assert ((after - before).abs() <= low["scale"][name].float()[:, None] / 2 + 1e-6).all()
    assert torch.equal(low["q"]["stack.blocks.0.attn.c_q.weight"], obj["q"]["stack.blocks.0.attn.c_q.weight"])


def test_strategy_order(capsys):
    ns = load_program(("int6", "fit_budget"), env={"QUANT_KEEP_FLOAT_NUMEL": "0", "FIT_BUDGET_LOWER": "mlp,attn"})
    obj, size = obj_and_size(ns)
    h = ns["Hyperparameters"]()
    full = size(obj)
    ns["ARTIFACT_BUDGET_BYTES"] = full - 10  # pruning a few +-1 values is enough
    out = ns["fit_budget"](obj, size, h)
    assert out["bits"] == obj["bits"] and size(out) <= full - 10
    assert "fit_budget: +-1 pruning alone fits" in capsys.readouterr().out
    ns["ARTIFACT_BUDGET_BYTES"] = full - 32 * 64  # one bit fewer on one class
    out = ns["fit_budget"](obj, size, h)
    assert set(out["bits"].values()) == {5, 6} and out["bits"]["stack.blocks.0.mlp.fc.weight"] == 5
    assert "fit_budget: mlp one bit lower" in capsys.readouterr().out
    both = size(ns["fit_budget_lower"](ns["fit_budget_lower"](obj, "mlp"), "attn"))
    ns["ARTIFACT_BUDGET_BYTES"] = both - 10  # both classes lower, and pruning
    out = ns["fit_budget"](obj, size, h)
    assert set(out["bits"].values()) == {5} and size(out) <= ns["ARTIFACT_BUDGET_BYTES"]
    printed = capsys.readouterr().out
    assert "attn one bit lower and +-1 pruning fit" in printed
