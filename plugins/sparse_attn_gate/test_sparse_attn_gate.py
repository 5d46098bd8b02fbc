"""plugins/sparse_attn_gate: half strength at zero init, the formula with its scale, the same forward in the
adapting eval; e2e with xsa before it."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "NUM_LAYERS": "2",
       "VOCAB_SIZE": "64", "SPARSE_ATTN_GATE_WINDOW": "6"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("sparse_attn_gate",), env=ENV)


def test_zero_init_gates_attention_at_half_strength(ns):
    assert ns["ATTENTION_POST"] == [ns["SparseAttentionGate"]]
    model = ns["GPT"](ns["Hyperparameters"]())
    gates = {k: v for k, v in model.state_dict().items() if ".post." in k}
    assert list(gates) == [f"stack.blocks.{i}.attn.post.0.sparse_attn_gate_w" for i in range(2)]
    assert all(w.shape == (4, 6) and torch.all(w == 0) for w in gates.values())
    gate = model.stack.blocks[0].attn.post[0]
    assert gate.sparse_attn_gate_w.golfc_tags == {"control": True, "group": "adam"}
    y, x = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 32)
    assert torch.equal(gate(y, None, x), y * 0.5)  # sigmoid(0)


@pytest.mark.parametrize("scale", ["0.5", "1.0"])
def test_the_formula_with_its_scale(scale):
    ns = load_program(("sparse_attn_gate",), env={**ENV, "SPARSE_ATTN_GATE_SCALE": scale})
    torch.manual_seed(0)
    gate = ns["SparseAttentionGate"](ns["Hyperparameters"](), 0)
    torch.nn.init.normal_(gate.sparse_attn_gate_w)
    y, x = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 32)
    g = torch.sigmoid(float(scale) * (x[..., :6] @ gate.sparse_attn_gate_w.T))  # (B, T, H)
    torch.testing.assert_close(gate(y, None, x), y * g[..., None])


def test_init_std_knob():
    ns = load_program(("sparse_attn_gate",), env={**ENV, "SPARSE_ATTN_GATE_INIT_STD": "0.1"})
    torch.manual_seed(0)
    w = ns["SparseAttentionGate"](ns["Hyperparameters"](), 0).sparse_attn_gate_w
    assert 0.03 < w.std().item() < 0.3


def test_the_adapting_eval_runs_the_gate():
    def prepare(model):
        for block in model.stack.blocks:
            torch.nn.init.normal_(block.attn.post[0].sparse_attn_gate_w)

    check_adapting_eval_uses_plugin(("sparse_attn_gate",), prepare=prepare,
                                    plugin_params=("stack.blocks.0.attn.post.0.sparse_attn_gate_w",))


@pytest.mark.slow
def test_an_emitted_program_with_xsa_then_the_sparse_gate_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("xsa", "sparse_attn_gate"), tiny_dataset, tmp_path, env={"SPARSE_ATTN_GATE_SCALE": "1.0"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sparse_attn_gate_scale=1.0" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
