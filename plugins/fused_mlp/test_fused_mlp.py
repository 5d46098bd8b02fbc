"""plugins/fused_mlp: on the CPU (and in eval) it is exactly leaky_relu2's MLP; the Triton kernels themselves are
checked against eager under Triton's CPU interpreter where Triton is installed, and on a GPU in
tests/gpu/test_fused_mlp_parity.py; the adapting eval runs it; refused together with leaky_relu2; e2e."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "16", "MLP_MULT": "3", "NEGATIVE_SLOPE": "0.5"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("fused_mlp",), env=ENV)


def test_it_fills_the_mlp_slot_with_a_subclass_of_the_leaky_mlp(ns):
    assert ns["MLP"] is ns["FusedLeakyReluSquaredMLP"]
    assert issubclass(ns["FusedLeakyReluSquaredMLP"], ns["LeakyReluSquaredMLP"])


@pytest.mark.parametrize("fused_flag", [False, True])  # True: as on a GPU machine; a CPU tensor still runs eager
def test_the_cpu_path_equals_leaky_relu2_forward_and_backward(ns, fused_flag):
    leaky = load_program(("leaky_relu2",), env=ENV)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    fused = ns["FusedLeakyReluSquaredMLP"](h, 0)
    fused.fused = fused_flag
    eager = leaky["LeakyReluSquaredMLP"](leaky["Hyperparameters"](), 0)
    assert fused.state_dict().keys() == eager.state_dict().keys()
    with torch.no_grad():
        torch.nn.init.normal_(fused.proj.weight)
    eager.load_state_dict(fused.state_dict())
    x = torch.randn(2, 7, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fused(xa), eager(xb)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(xa.grad, xb.grad)
    for (name, pa), pb in zip(fused.named_parameters(), eager.parameters()):
        assert torch.equal(pa.grad, pb.grad), name


def test_the_triton_kernels_match_eager_under_the_interpreter(tmp_path):
    """Forward (pre, post, y) and backward (grads of x, W1, W2) of the custom op against eager fp32, ragged
    shapes, with TRITON_INTERPRET=1 (the kernels run on the CPU). Needs the triton package, absent from a
    CPU-only torch install: then this skips and the GPU parity test is the check."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (CPU-only torch): see tests/gpu/test_fused_mlp_parity.py")
    script = tmp_path / "interp.py"
    script.write_text(textwrap.dedent("""
        import torch
        from golfc.testing import load_program
        ns = load_program(("fused_mlp",), env={"DEVICE": "cpu", "MODEL_DIM": "48", "MLP_MULT": "3"})
        assert ns["FUSED_MLP_HAS_TRITON"]
        torch.manual_seed(0)
        M, d, N = 70, 48, 144
        x, w1, w2 = (torch.randn(*s).div(s[1] ** 0.5).requires_grad_() for s in ((M, d), (N, d), (d, N)))
        y, pre, post = torch.ops.golfc.fused_leaky_mlp(x, w1, w2, 0.5)
        g = torch.randn(M, d)
        y.backward(g)
        got = [y.detach(), x.grad, w1.grad, w2.grad]
        x.grad = w1.grad = w2.grad = None
        ref_pre = x @ w1.t()
        ref = torch.nn.functional.leaky_relu(ref_pre, 0.5).square() @ w2.t()
        ref.backward(g)
        torch.testing.assert_close(pre, ref_pre.detach(), rtol=1e-5, atol=1e-5)
        for a, b in zip(got, [ref.detach(), x.grad, w1.grad, w2.grad]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        print("interpreter parity ok")
    """))
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "interpreter parity ok" in proc.stdout


def test_fused_mlp_and_leaky_relu2_together_are_refused(tmp_path):
    from golfc.build import build_submission
    from golfc.errors import GolfcError

    with pytest.raises(GolfcError, match="cannot be combined with"):
        build_submission(("fused_mlp", "leaky_relu2"), {}, tmp_path)


def test_the_adapting_eval_runs_the_fused_plugins_mlp():
    check_adapting_eval_uses_plugin(("fused_mlp",))


@pytest.mark.slow
def test_an_emitted_program_with_fused_mlp_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("fused_mlp",), tiny_dataset, tmp_path, env={"MLP_MULT": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "fused_mlp_enabled=True" in run.stdout and "negative_slope=0.5" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
