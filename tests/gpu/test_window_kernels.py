"""plugins/window on a GPU: the compiled FlexAttention kernel (and flash-attn's window_size where importable) against
the masked-SDPA reference, forward and backward, at the baseline's head_dim and GQA ratio.

Skips without CUDA; run on the device machine with `bash bench/device_gpu_tests.sh`.
"""

from __future__ import annotations

import pytest
import torch

from golfc.testing import attention_leaves, forward_backward, load_program, relative_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

T, WINDOW = 1024, 256
ENV = {"NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": str(T),
       "WINDOW_SIZE": str(WINDOW), "WINDOW_ATTN_LAYERS": "1", "DEVICE": "cuda"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("window",), env=ENV)


@pytest.mark.parametrize("kernel", ["flex", "flash"])
def test_compiled_window_kernels_match_the_masked_sdpa_reference(ns, kernel):
    if kernel == "flash" and ns["WINDOW_FLASH_FUNC"] is None:
        pytest.skip("neither flash_attn_interface nor flash_attn.cute is importable")
    tensors = attention_leaves(T)
    expected = forward_backward(lambda q, k, v: ns["window_sdpa_attention"](q, k, v, WINDOW), tensors)
    fn = torch.compile(lambda q, k, v: ns["WINDOW_KERNELS"][kernel](q, k, v, WINDOW), fullgraph=True, dynamic=False)
    for _ in range(2):  # the second call reuses the compiled graph and the cached block mask
        actual = forward_backward(fn, tensors)
    for a, e in zip(actual, expected):
        assert relative_error(a, e) < 2e-2  # bf16 inputs, different accumulation orders


def test_a_compiled_window_model_trains_like_the_masked_model(ns):
    """One compiled forward and backward of a window model with WINDOW_KERNEL=auto (flex or flash on CUDA) against
    the eager masked-SDPA model, same weights."""
    torch.manual_seed(0)
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h).cuda()
    for block in model.stack.blocks:
        torch.nn.init.normal_(block.attn.proj.weight, std=0.05)
    ids = torch.randint(0, h.vocab_size, (4, T), device="cuda")

    def loss_and_grads(m):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = m(ids, ids.roll(-1, 1))
        loss.backward()
        return loss.item(), [p.grad.float().clone() for p in model.parameters()]

    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    loss, grads = loss_and_grads(compiled)
    h_sdpa = ns["Hyperparameters"]()
    h_sdpa.window_kernel = "sdpa"
    for block in model.stack.blocks:
        block.attn.h = h_sdpa
    ref_loss, ref_grads = loss_and_grads(model)
    assert abs(loss - ref_loss) < 2e-2
    assert max(relative_error(g, r) for g, r in zip(grads, ref_grads) if r.norm() > 0) < 5e-2
    assert ns["WINDOW_BLOCK_MASKS"] or ns["WINDOW_FLASH_FUNC"] is not None  # flex built (and cached) its mask
