"""plugins/smear_gate: identity at init, the formula, the BOS mask, causality, the same forward in the
adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "NUM_LAYERS": "2",
       "VOCAB_SIZE": "64", "SMEAR_GATE_WINDOW": "4"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("smear_gate",), env=ENV)


def gate(ns, seed=0, mask=True):
    h = ns["Hyperparameters"]()
    h.smear_bos_mask = mask
    m = ns["SmearGate"](h)
    torch.manual_seed(seed)
    with torch.no_grad():
        m.smear_gate_w.normal_()
        m.smear_lambda.fill_(0.7)
    return m


def test_it_is_a_pre_norm_module_and_the_identity_at_init(ns):
    assert ns["SmearGate"] in ns["EMBEDDING_PRE_NORM"]
    m = ns["SmearGate"](ns["Hyperparameters"]())
    ids, e = torch.randint(0, 64, (2, 9)), torch.randn(2, 9, 16)
    assert torch.equal(m(ids, e), e)


def test_the_formula(ns):
    m = gate(ns)
    ids = torch.tensor([[5, 6, 1, 7, 8]])  # a BOS at position 2
    e = torch.randn(1, 5, 16)
    out = m(ids, e)
    assert torch.equal(out[:, 0], e[:, 0])
    for t in (1, 3, 4):
        g = 0.7 * torch.sigmoid(e[0, t, :4] @ m.smear_gate_w[0])
        torch.testing.assert_close(out[0, t], e[0, t] + g * e[0, t - 1])
    assert torch.equal(out[0, 2], e[0, 2])  # BOS: nothing from the previous document


def test_a_bos_never_sees_the_previous_document(ns):
    m = gate(ns)
    ids = torch.tensor([[5, 6, 9, 1, 7, 8]])
    e = torch.randn(1, 6, 16)
    other = e.clone()
    other[:, :3] = torch.randn(1, 3, 16)  # a different previous document
    a, b = m(ids, e), m(ids, other)
    assert torch.equal(a[:, 3:], b[:, 3:])
    unmasked = gate(ns, mask=False)
    assert not torch.equal(unmasked(ids, e)[:, 3], unmasked(ids, other)[:, 3])  # the mask is what stops it


def test_later_positions_never_change_earlier_outputs(ns):
    m = gate(ns)
    ids, e = torch.randint(2, 64, (1, 8)), torch.randn(1, 8, 16)
    other = e.clone()
    other[:, 5:] = torch.randn(1, 3, 16)
    assert torch.equal(m(ids, e)[:, :5], m(ids, other)[:, :5])


def test_gate_parameters_are_control_tensors(ns):
    model = ns["GPT"](ns["Hyperparameters"]())
    names = [n for n, _ in model.named_parameters() if "smear" in n]
    assert names == ["pre_norm.0.smear_gate_w", "pre_norm.0.smear_lambda"]
    assert all(any(p in n for p in ns["CONTROL_TENSOR_NAME_PATTERNS"]) for n in names)


def _open_gate(model):
    smear = model.pre_norm[0]
    torch.nn.init.normal_(smear.smear_gate_w, std=1.0)
    smear.smear_lambda.fill_(0.8)
    model.tok_emb.weight.normal_()  # a spread-out embedding, so the smeared share shows in the scores


def test_the_adapting_eval_runs_the_gate_and_trains_it():
    check_adapting_eval_uses_plugin(("smear_gate",), prepare=_open_gate,
                                    plugin_params=("pre_norm.0.smear_gate_w", "pre_norm.0.smear_lambda"))


@pytest.mark.slow
def test_an_emitted_program_with_smear_gate_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("smear_gate",), tiny_dataset, tmp_path, env={"SMEAR_GATE_WINDOW": "8"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "smear_gate_window=8" in run.stdout and "smear_bos_mask=True" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
