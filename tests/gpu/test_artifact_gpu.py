"""GPU paths of the artifact plugins: late QAT's switch under inductor (the compiled kernels a run uses) and
GPTQ's Hessians and rounding on the device against the CPU. Skips without CUDA (bash bench/device_gpu_tests.sh)."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import TINY_QUANT_ENV, load_program

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

SMALL = {**TINY_QUANT_ENV, "DEVICE": "cuda", "MODEL_DIM": "128", "NUM_HEADS": "2", "TRAIN_SEQ_LEN": "256"}


def test_late_qat_switch_changes_the_inductor_compiled_forward():
    """The switch must reach the compiled graph (one record's late QAT was constant-folded away). Compared on the
    logits, not the loss: a random model's near-uniform softmax hides a weight change from the loss (the loss moved
    by 2.6e-4 on an H100, 2026-12-07). In fp32, so that compiled and eager agree far below the change."""
    ns = load_program(("int6", "qat"), env={**SMALL, "LATE_QAT_THRESHOLD": "0.5"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h).cuda()
    for p in model.parameters():
        if p.ndim == 2:
            torch.nn.init.normal_(p, std=0.05)
    ids = torch.randint(0, h.vocab_size, (4, 256), device="cuda")
    compiled = torch.compile(lambda t: model.logits(model.hidden(t)), dynamic=False, fullgraph=True)
    ns["qat_train_hook"](model, 0, 1.0, h)  # lr_mul 1.0 >= 0.5: off
    with torch.no_grad():
        before = compiled(ids)
        ns["qat_train_hook"](model, 10, 0.4, h)  # lr_mul 0.4 < 0.5: on
        after = compiled(ids)
        eager = model.logits(model.hidden(ids))
        again = compiled(ids)
    change = (after - before).abs().max().item()
    assert change > 1e-3, f"the compiled logits moved by {change} when QAT switched on"
    assert (after - eager).abs().max().item() < 0.2 * change  # the compiled graph quantizes as eager does
    assert torch.equal(after, again)


def test_gptq_rounding_on_the_gpu_matches_the_cpu():
    ns = load_program(("int6", "gptq"), env=SMALL)
    torch.manual_seed(0)
    w = torch.randn(256, 128) * 0.05
    x = torch.randn(4096, 128) @ torch.randn(128, 128) * 0.1
    H = x.T @ x
    scale = ns["lowbit_scale"](w.abs().amax(1), 31)
    cpu = ns["gptq_round"](w, scale, 31, H)
    gpu = ns["gptq_round"](w.cuda(), scale.cuda(), 31, H.cuda())
    assert (cpu != gpu).float().mean() < 0.01  # ties may round apart after different float summation orders
