"""plugins/unet_gated_skips: the gate's formula at each decoder position, the 0.5 blend at init, SKIP_GATES_ENABLED=0
as the plain U-Net, parameters and control tags, the contract, the same forward in the adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import check_contract, load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "NUM_LAYERS": "5", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "VOCAB_SIZE": "64"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("unet_gated_skips",), env=ENV)


def _stack(ns, seed=0, **hset):
    h = ns["Hyperparameters"]()
    for k, v in hset.items():
        setattr(h, k, v)
    torch.manual_seed(seed)
    stack = ns["BlockStack"](h)
    with torch.no_grad():
        for p in stack.parameters():
            torch.nn.init.normal_(p, std=0.3)
    return stack


def _by_hand(stack, x, x0, gated):
    """5 layers: positions 0, 1 push; 2, 3 pop in reverse through the gate; 4 has no skip left."""
    fctx_free = lambda block, x: block(x, x0, None)  # noqa: E731  (the blocks take no context here)

    def mix(x, i, skip):
        scaled = stack.skip_weights[i] * skip
        if not gated:
            return x + scaled
        g = torch.sigmoid(stack.skip_gates[i])
        return scaled + g * (x - scaled)  # lerp(scaled, x, g)

    e0 = fctx_free(stack.blocks[0], x)
    e1 = fctx_free(stack.blocks[1], e0)
    d0 = fctx_free(stack.blocks[2], mix(e1, 0, e1))
    d1 = fctx_free(stack.blocks[3], mix(d0, 1, e0))
    return fctx_free(stack.blocks[4], d1)


def test_the_gated_formula_at_each_decoder_position(ns):
    stack = _stack(ns)
    assert type(stack.mixer).__name__ == "GatedUNetSkips" and stack.skip_gates.shape == (2, 16)
    x0 = torch.randn(2, 6, 16)
    x = x0 + 0.1 * torch.randn(2, 6, 16)
    fctx = ns["ForwardContext"](None, x0, (), [])
    torch.testing.assert_close(stack(x, x0, fctx), _by_hand(stack, x, x0, gated=True), atol=1e-5, rtol=1e-5)


def test_gates_start_at_zero_an_even_blend(ns):
    h = ns["Hyperparameters"]()
    stack = ns["BlockStack"](h)
    assert torch.equal(stack.skip_gates, torch.zeros(2, 16)) and torch.equal(stack.skip_weights, torch.ones(2, 16))
    x, skip = torch.randn(1, 3, 16), torch.randn(1, 3, 16)
    torch.testing.assert_close(stack.mixer.mix(stack, x, 1, skip), 0.5 * x + 0.5 * skip)


def test_disabled_gates_are_the_plain_unet_skips(ns):
    plain = load_program((), env=ENV)
    stack = _stack(ns, skip_gates_enabled=False)
    assert not hasattr(stack, "skip_gates")
    reference = plain["BlockStack"](plain["Hyperparameters"]())
    reference.load_state_dict(stack.state_dict(), strict=True)  # the same parameters, the same names
    x0 = torch.randn(2, 6, 16)
    x = x0 + 0.1 * torch.randn(2, 6, 16)
    ours = stack(x, x0, ns["ForwardContext"](None, x0, (), []))
    assert torch.equal(ours, reference(x, x0, plain["ForwardContext"](None, x0, (), [])))
    torch.testing.assert_close(ours, _by_hand(stack, x, x0, gated=False), atol=1e-5, rtol=1e-5)


def test_gates_are_control_tensors_of_the_stack(ns):
    model = ns["GPT"](ns["Hyperparameters"]())
    assert "stack.skip_gates" in dict(model.named_parameters())
    assert ns["is_control_tensor"]("stack.skip_gates")


def test_the_skip_mixer_contract():
    assert check_contract("skip_mixer", "unet_gated_skips") == []


def _open_gates(model):
    torch.nn.init.normal_(model.stack.skip_gates, std=1.0)
    # two layers: the one skip is the stream itself, lerp(w * x, x, g); with w = 1 the gate would not matter
    torch.nn.init.normal_(model.stack.skip_weights, mean=0.5, std=0.5)


def test_the_adapting_eval_runs_the_gates_and_trains_them():
    check_adapting_eval_uses_plugin(("unet_gated_skips",), prepare=_open_gates, plugin_params=("stack.skip_gates",))


@pytest.mark.slow
def test_an_emitted_program_with_gated_skips_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("unet_gated_skips",), tiny_dataset, tmp_path, env={"NUM_LAYERS": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skip_gates_enabled=True" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
