"""plugins/parallel_residuals: the GPT-J and two-lane formulas through the core's BlockStack (skips into lane 0,
lane 1 from the stream before the skip, merge at the end), sequential layers unchanged, initial values, the block
contract, a second block plugin refused, the same forward in the adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golfc.engine import resolve
from golfc.errors import SlotConflictError
from golfc.recipe import Recipe
from golfc.testing import PluginDir, check_contract, load_program, run_emitted, slot_plugin
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "NUM_LAYERS": "4", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "VOCAB_SIZE": "64", "PARALLEL_START_LAYER": "2"}


def _n(x):
    return F.rms_norm(x, (x.size(-1),))


def _stack(ns, seed=0):
    torch.manual_seed(seed)
    stack = ns["BlockStack"](ns["Hyperparameters"]())
    with torch.no_grad():
        for p in stack.parameters():
            torch.nn.init.normal_(p, mean=0.5, std=0.3)
    return stack


def _sequential(block, x, x0):  # UNetBlock by hand
    mix = block.resid_mix
    x = mix[0] * x + mix[1] * x0
    x = x + block.attn_scale * block.attn(_n(x))
    return x + block.mlp_scale * block.mlp(_n(x))


def _lanes(block, lane0, lane1, x0):  # the records' _parallel_block
    mix, r, p = block.resid_mix, block.parallel_resid_lambdas, block.parallel_post_lambdas
    a = block.attn_scale * block.attn(_n(mix[0] * lane0 + mix[1] * x0))
    m = block.mlp_scale * block.mlp(_n(lane1))
    return r[0] * lane0 + p[0, 0] * a + p[1, 0] * m, r[1] * lane1 + p[0, 1] * a + p[1, 1] * m


@pytest.mark.parametrize("final", ["mean", "attn", "mlp"])
def test_two_lanes_from_the_start_layer_with_skips_into_lane0(final):
    ns = load_program(("parallel_residuals",), env={**ENV, "PARALLEL_FINAL_LANE": final})
    stack = _stack(ns)
    assert [b.form for b in stack.blocks] == [None, None, "lanes", "lanes"]
    x0 = torch.randn(2, 5, 16)
    x = x0 + 0.1 * torch.randn(2, 5, 16)
    w = stack.skip_weights
    e0 = _sequential(stack.blocks[0], x, x0)
    e1 = _sequential(stack.blocks[1], e0, x0)
    lane0, lane1 = _lanes(stack.blocks[2], e1 + w[0] * e1, e1, x0)  # lane 1 starts before the skip
    lane0, lane1 = _lanes(stack.blocks[3], lane0 + w[1] * e0, lane1, x0)
    expected = {"mean": 0.5 * (lane0 + lane1), "attn": lane0, "mlp": lane1}[final]
    got = stack(x, x0, ns["ForwardContext"](None, x0, (), []))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_the_gptj_form():
    ns = load_program(("parallel_residuals",), env={**ENV, "PARALLEL_START_LAYER": "-1",
                                                     "PARALLEL_RESIDUAL_START": "3"})
    stack = _stack(ns)
    assert [b.form for b in stack.blocks] == [None, None, None, "gptj"]
    block, x0 = stack.blocks[3], torch.randn(2, 5, 16)
    x = torch.randn(2, 5, 16)
    x_in = block.resid_mix[0] * x + block.resid_mix[1] * x0
    expected = x_in + block.attn_scale * block.attn(_n(x_in)) + block.mlp_scale * block.mlp(_n(x_in))
    fctx = ns["ForwardContext"](None, x0, (), [])
    fctx.schedule, fctx.depth = (0, 1, 2, 3), 3
    torch.testing.assert_close(block(x, x0, fctx), expected, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(expected, _sequential(block, x, x0))  # not the sequential block


def test_lanes_then_gptj_then_sequential_by_layer():
    ns = load_program(("parallel_residuals",), env={**ENV, "PARALLEL_START_LAYER": "3", "PARALLEL_RESIDUAL_START": "1"})
    h = ns["Hyperparameters"]()
    assert [ns["parallel_form"](h, i) for i in range(4)] == [None, "gptj", "gptj", "lanes"]


def test_off_everywhere_is_the_baseline_block_stack():
    env = {**ENV, "PARALLEL_START_LAYER": "-1"}
    ns, base = load_program(("parallel_residuals",), env=env), load_program((), env=env)
    model = ns["GPT"](ns["Hyperparameters"]())
    plain = base["GPT"](base["Hyperparameters"]())
    plain.load_state_dict(model.state_dict(), strict=True)  # the same parameter names and shapes
    for p in model.parameters():
        torch.nn.init.normal_(p.data, std=0.3)
    plain.load_state_dict(model.state_dict(), strict=True)
    ids = torch.randint(0, 64, (2, 9))
    assert torch.equal(model(ids, ids), plain(ids, ids))


def test_initial_values_and_control_tags():
    ns = load_program(("parallel_residuals",), env=ENV)
    model = ns["GPT"](ns["Hyperparameters"]())
    block = model.stack.blocks[2]
    assert torch.equal(block.parallel_resid_lambdas, torch.full((2,), 1.1))
    assert torch.equal(block.parallel_post_lambdas, torch.ones(2, 2))
    assert not hasattr(model.stack.blocks[1], "parallel_post_lambdas")
    assert ns["is_control_tensor"]("stack.blocks.2.parallel_resid_lambdas")
    assert ns["is_control_tensor"]("stack.blocks.2.parallel_post_lambdas")
    # GPT-J at init (zero output projections: each block is the identity) is the sequential model at init
    env = {**ENV, "PARALLEL_START_LAYER": "-1", "PARALLEL_RESIDUAL_START": "0"}
    ns, base = load_program(("parallel_residuals",), env=env), load_program((), env=env)
    model, plain = ns["GPT"](ns["Hyperparameters"]()), base["GPT"](base["Hyperparameters"]())
    plain.load_state_dict(model.state_dict(), strict=True)
    ids = torch.randint(0, 64, (1, 6))
    assert torch.equal(model.hidden(ids), plain.hidden(ids))


def test_the_block_contract():
    assert check_contract("block", "parallel_residuals", env={"PARALLEL_START_LAYER": "2"}) == []
    assert check_contract("block", "parallel_residuals", env={"PARALLEL_START_LAYER": "-1",
                                                              "PARALLEL_RESIDUAL_START": "1"}) == []


def test_a_second_block_plugin_is_refused(tmp_path):
    plugins = PluginDir(tmp_path).add("other_block", slot_plugin("golfc_block", "other_block_runtime", "OtherBlock"),
                                      "class OtherBlock:\n    pass\n")
    with pytest.raises(SlotConflictError, match="parallel_residuals and other_block both fill slot 'block'"):
        resolve(Recipe(plugins=("parallel_residuals", "other_block")), plugins)


def _open(model):
    with torch.no_grad():
        torch.nn.init.normal_(model.stack.blocks[1].parallel_post_lambdas, mean=1.0, std=0.5)


def test_the_adapting_eval_runs_the_lanes_and_trains_them():
    check_adapting_eval_uses_plugin(("parallel_residuals",), env={"PARALLEL_START_LAYER": "1"}, prepare=_open,
                                    plugin_params=("stack.blocks.1.parallel_post_lambdas",
                                                   "stack.blocks.1.parallel_resid_lambdas"))


@pytest.mark.slow
def test_an_emitted_program_with_parallel_residuals_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("parallel_residuals",), tiny_dataset, tmp_path, env={"PARALLEL_START_LAYER": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "parallel_start_layer=1" in run.stdout and "parallel_final_lane=mean" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
