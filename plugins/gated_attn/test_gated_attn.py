"""plugins/gated_attn: the formula, init and tags, per-layer parameters in the state dict, the same forward in the
adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "NUM_LAYERS": "2",
       "VOCAB_SIZE": "64"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("gated_attn",), env=ENV)


def test_it_is_an_attention_post_module_with_one_gate_per_layer(ns):
    assert ns["ATTENTION_POST"] == [ns["GatedAttention"]]
    model = ns["GPT"](ns["Hyperparameters"]())
    gates = {k: v.shape for k, v in model.state_dict().items() if ".post." in k}
    assert gates == {f"stack.blocks.{i}.attn.post.0.attn_gate_w": (4, 32) for i in range(2)}
    w = model.stack.blocks[0].attn.post[0].attn_gate_w
    assert w.golfc_tags == {"control": True, "group": "adam"}
    assert 0.003 < w.std().item() < 0.007  # GATED_ATTN_INIT_STD = 0.005


def test_the_formula(ns):
    torch.manual_seed(0)
    gate = ns["GatedAttention"](ns["Hyperparameters"](), 0)
    torch.nn.init.normal_(gate.attn_gate_w)
    y, v, x = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 2, 8), torch.randn(2, 5, 32)
    out = gate(y, v, x, None)
    for b in range(2):
        for t in range(5):
            g = torch.sigmoid(gate.attn_gate_w @ x[b, t])  # (H,): one gate per head from the whole input
            torch.testing.assert_close(out[b, t], y[b, t] * g[:, None])


def test_near_half_at_init_and_quant_gate_tags_int8():
    ns = load_program(("gated_attn",), env={**ENV, "GATED_ATTN_QUANT_GATE": "1"})
    torch.manual_seed(0)
    gate = ns["GatedAttention"](ns["Hyperparameters"](), 1)
    y, x = torch.randn(1, 3, 4, 8), torch.randn(1, 3, 32)
    ratio = gate(y, None, x) / y
    assert (ratio - 0.5).abs().max() < 0.02
    assert gate.attn_gate_w.golfc_tags["quant"] == "int8"


def test_the_adapting_eval_runs_the_gate():
    def prepare(model):
        for block in model.stack.blocks:
            torch.nn.init.normal_(block.attn.post[0].attn_gate_w)

    check_adapting_eval_uses_plugin(("gated_attn",), prepare=prepare,
                                    plugin_params=("stack.blocks.0.attn.post.0.attn_gate_w",))


@pytest.mark.slow
def test_an_emitted_program_with_gated_attn_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("gated_attn",), tiny_dataset, tmp_path, env={"GATED_ATTN_QUANT_GATE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "gated_attn_quant_gate=True" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
