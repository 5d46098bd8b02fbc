"""plugins/attn_out_gate: identity at init, the formula on the first window dims only, the same forward in the
adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "NUM_LAYERS": "2",
       "VOCAB_SIZE": "64", "ATTN_OUT_GATE_WINDOW": "6"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("attn_out_gate",), env=ENV)


def test_one_zero_gate_per_layer_and_the_identity_at_init(ns):
    assert ns["ATTENTION_POST"] == [ns["AttentionOutputGate"]]
    model = ns["GPT"](ns["Hyperparameters"]())
    gates = {k: v for k, v in model.state_dict().items() if ".post." in k}
    assert list(gates) == [f"stack.blocks.{i}.attn.post.0.attn_out_gate_w" for i in range(2)]
    assert all(w.shape == (4, 6) and torch.all(w == 0) for w in gates.values())
    gate = model.stack.blocks[1].attn.post[0]
    assert gate.attn_out_gate_w.golfc_tags == {"control": True, "group": "adam"}
    y, x = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 32)
    assert torch.equal(gate(y, None, x), y)  # 2 sigmoid(0) = 1


def test_the_formula_reads_only_the_window(ns):
    torch.manual_seed(0)
    gate = ns["AttentionOutputGate"](ns["Hyperparameters"](), 0)
    torch.nn.init.normal_(gate.attn_out_gate_w)
    y, x = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 32)
    g = 2 * torch.sigmoid(x[..., :6] @ gate.attn_out_gate_w.T)  # (B, T, H)
    torch.testing.assert_close(gate(y, None, x), y * g[..., None])
    x2 = x.clone()
    x2[..., 6:] = torch.randn(2, 5, 26)  # dims past the window do not matter
    assert torch.equal(gate(y, None, x2), gate(y, None, x))


def test_the_adapting_eval_runs_the_gate():
    def prepare(model):  # zero-initialised: give it weights so that it acts
        for block in model.stack.blocks:
            torch.nn.init.normal_(block.attn.post[0].attn_out_gate_w)

    check_adapting_eval_uses_plugin(("attn_out_gate",), prepare=prepare,
                                    plugin_params=("stack.blocks.1.attn.post.0.attn_out_gate_w",))


@pytest.mark.slow
def test_an_emitted_program_with_attn_out_gate_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("attn_out_gate",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "attn_out_gate_window=12" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
