"""fused_mlp on a GPU: the Triton forward and backward against the eager leaky_relu2 MLP (same weights) under bf16
autocast, eagerly and inside torch.compile(fullgraph=True), at a ragged and at the record's shape; and a short
training run of the emitted program with the kernels on. Skips without CUDA (run on the device machine)."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, recorded_ops, relative_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")


def pair(model_dim: int, mlp_mult: int):
    env = {"DEVICE": "cuda", "MODEL_DIM": str(model_dim), "MLP_MULT": str(mlp_mult)}
    ns = load_program(("fused_mlp",), env=env)
    assert ns["FUSED_MLP_HAS_TRITON"], "triton missing on a CUDA machine"
    torch.manual_seed(0)
    fused = ns["FusedLeakyReluSquaredMLP"](ns["Hyperparameters"](), 0).cuda()
    with torch.no_grad():
        torch.nn.init.normal_(fused.proj.weight, std=model_dim ** -0.5)
    eager = ns["LeakyReluSquaredMLP"](ns["Hyperparameters"](), 0).cuda()
    eager.load_state_dict(fused.state_dict())
    return fused, eager


def run(module, x, dy, compiled=False):
    module.zero_grad(set_to_none=True)
    fn = torch.compile(module, fullgraph=True, dynamic=False) if compiled else module
    x = x.clone().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = fn(x)
    y.backward(dy)
    return y.detach(), x.grad, [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(("batch", "seq", "dim", "mult"), [(3, 37, 96, 3), (8, 1024, 512, 4)])
def test_fused_forward_and_backward_match_eager(batch, seq, dim, mult, compiled):
    fused, eager = pair(dim, mult)
    torch.manual_seed(1)
    x = torch.randn(batch, seq, dim, device="cuda")
    dy = torch.randn(batch, seq, dim, device="cuda", dtype=torch.bfloat16)
    y_f, gx_f, gp_f = run(fused, x, dy, compiled)
    y_e, gx_e, gp_e = run(eager, x, dy, compiled)
    assert y_f.dtype == y_e.dtype == torch.bfloat16
    assert relative_error(y_f, y_e) < 1e-2
    assert relative_error(gx_f, gx_e) < 2e-2
    for a, b in zip(gp_f, gp_e):
        assert a.dtype == b.dtype == torch.float32  # fp32 master weights get fp32 gradients
        assert relative_error(a, b) < 2e-2


def test_the_kernel_path_is_taken_in_training_and_not_in_eval():
    fused, _ = pair(64, 2)
    x = torch.randn(2, 16, 64, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        with recorded_ops() as train_ops:
            fused.train()
            fused(x).sum().backward()
        with recorded_ops() as eval_ops, torch.no_grad():
            fused.eval()
            fused(x)
    assert any("fused_leaky_mlp" in n and "grad_pre" not in n for n in train_ops)
    assert any("fused_leaky_mlp_grad_pre" in n for n in train_ops)  # the fused backward ran
    assert not any("fused_leaky_mlp" in n for n in eval_ops)
