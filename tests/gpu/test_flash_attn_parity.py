"""plugins/flash_attn on a GPU: FA3 / FA4 (whichever the program imports) against SDPA, forward and backward in bf16
at the baseline's head_dim and GQA ratio, eager and compiled, and a compiled model step against the SDPA model.

Skips without CUDA or without flash_attn_interface / flash_attn.cute; run on the device machine with
`bash bench/device_gpu_tests.sh`.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import attention_leaves, forward_backward, load_program, relative_error


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # flash_attn.cute without flash_attn
        return False


pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine"),
    pytest.mark.skipif(not (_importable("flash_attn_interface") or _importable("flash_attn.cute")),
                       reason="neither flash_attn_interface (FA3) nor flash_attn.cute (FA4) is installed"),
]

T = 1024
ENV = {"NUM_LAYERS": "2", "MODEL_DIM": "512", "NUM_HEADS": "8", "NUM_KV_HEADS": "4", "TRAIN_SEQ_LEN": str(T),
       "VOCAB_SIZE": "1024", "DEVICE": "cuda"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("flash_attn",), env=ENV)


def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_flash_attention_matches_sdpa_forward_and_backward(ns, compiled):
    tensors = attention_leaves(T)
    expected = forward_backward(sdpa, tensors)
    kernel = ns["flash_attention"]
    fn = torch.compile(kernel, fullgraph=True, dynamic=False) if compiled else kernel
    actual = forward_backward(fn, tensors)
    assert actual[0].shape == expected[0].shape
    for a, e in zip(actual, expected):
        assert relative_error(a, e) < 2e-2  # bf16 inputs, different accumulation orders


def test_fp32_inputs_are_computed_in_the_autocast_dtype(ns):
    q, k, v = (t.detach().float() for t in attention_leaves(T, 1))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = ns["flash_attention"](q, k, v)
        expected = sdpa(q, k, v)
    assert y.dtype == expected.dtype == torch.bfloat16
    assert relative_error(y.float(), expected.float()) < 2e-2
    assert ns["flash_attention"](q, k, v).dtype == torch.float32  # outside autocast: bf16 inside, fp32 back


def test_a_compiled_model_step_matches_the_sdpa_model(ns):
    base = load_program(env=ENV)
    torch.manual_seed(0)
    h = ns["Hyperparameters"]()
    ours = ns["GPT"](h).cuda()
    for block in ours.stack.blocks:
        torch.nn.init.normal_(block.attn.proj.weight, std=0.05)
    theirs = base["GPT"](base["Hyperparameters"]()).cuda()
    theirs.load_state_dict(ours.state_dict())
    ids = torch.randint(0, h.vocab_size, (4, T), device="cuda")

    def loss_and_grads(model):
        compiled = torch.compile(model, fullgraph=True, dynamic=False)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = compiled(ids, torch.roll(ids, -1, dims=1))
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten().float() for p in model.parameters()])

    (loss_a, grads_a), (loss_b, grads_b) = loss_and_grads(ours), loss_and_grads(theirs)
    assert loss_a == pytest.approx(loss_b, rel=2e-3)
    assert relative_error(grads_a, grads_b) < 3e-2
