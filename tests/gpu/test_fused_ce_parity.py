"""fused_ce on a GPU: the Triton softcapped cross-entropy (forward and backward) against the eager loss on the same
logits, in fp32 and in bf16, at a ragged and at the records' vocabularies; the whole GPT's loss and gradients with
the plugin against the baseline's under bf16 autocast, eagerly and inside torch.compile(fullgraph=True); the
kernels are taken in training and not in evaluation. Skips without CUDA (run on the device machine)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import load_program, recorded_ops, relative_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

ENV = {"DEVICE": "cuda", "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("rows", "vocab"), [(333, 1000), (4096, 1024), (2048, 8192)])
def test_the_op_matches_eager_softcapped_cross_entropy(rows, vocab, dtype):
    ns = load_program(("fused_ce",), env={**ENV, "VOCAB_SIZE": str(vocab)})
    assert ns["FUSED_CE_HAS_TRITON"], "triton missing on a CUDA machine"
    torch.manual_seed(0)
    x = (torch.randn(rows, vocab, device="cuda") * 20).to(dtype).requires_grad_()
    t = torch.randint(0, vocab, (rows,), device="cuda")
    g = torch.rand(rows, device="cuda")
    loss, lse = torch.ops.golfc.fused_softcap_ce(x, t, 30.0)
    loss.backward(g)
    xr = x.detach().float().requires_grad_()
    z = 30.0 * torch.tanh(xr / 30.0)
    ref = F.cross_entropy(z, t, reduction="none")
    ref.backward(g)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(lse, torch.logsumexp(z, -1).detach(), rtol=1e-5, atol=2e-5)
    assert x.grad.dtype == dtype
    assert relative_error(x.grad, xr.grad) < (1e-5 if dtype == torch.float32 else 1e-2)


def pair(vocab: int):
    ns = load_program(("fused_ce",), env={**ENV, "VOCAB_SIZE": str(vocab)})
    base = load_program(env={**ENV, "VOCAB_SIZE": str(vocab)})
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]()).cuda()
    for name, p in model.named_parameters():
        if name.endswith("proj.weight"):
            torch.nn.init.normal_(p, std=0.05)
    reference = base["GPT"](base["Hyperparameters"]()).cuda()
    reference.load_state_dict(model.state_dict())
    return model, reference


def loss_and_grads(model, ids, compiled):
    model.zero_grad(set_to_none=True)
    fn = torch.compile(model, fullgraph=True, dynamic=False) if compiled else model
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = fn(ids, torch.roll(ids, -1, dims=1))
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("vocab", [1024, 8192])
def test_the_models_loss_and_gradients_match_the_baseline(vocab, compiled):
    """The eager loss rounds the capped logits to bf16 before its fp32 cross-entropy; the kernel caps in fp32:
    the same loss to bf16 rounding."""
    model, reference = pair(vocab)
    ids = torch.randint(0, vocab, (8, 256), device="cuda")
    a, grads_a = loss_and_grads(model, ids, compiled)
    b, grads_b = loss_and_grads(reference, ids, compiled)
    assert abs(a.item() - b.item()) < 2e-3 * abs(b.item())
    for ga, gb in zip(grads_a, grads_b):
        assert relative_error(ga, gb) < 3e-2


def test_the_kernels_run_in_training_and_not_in_evaluation():
    model, _ = pair(1024)
    ids = torch.randint(0, 1024, (2, 64), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        with recorded_ops() as train_ops:
            model(ids, ids).backward()
        with recorded_ops() as eval_ops, torch.no_grad():
            nll = model(ids, ids, reduction="none")
    assert any("fused_softcap_ce." in n or n.endswith("fused_softcap_ce") for n in train_ops)
    assert any("fused_softcap_ce_backward" in n for n in train_ops)
    assert not any("fused_softcap_ce" in n for n in eval_ops) and nll.shape == (2, 64)
