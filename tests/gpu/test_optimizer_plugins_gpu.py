"""The optimizer plugins' GPU paths against CPU references: polar_ns compiled by Muon on CUDA, weight_decay's
AdamW groups in fused Adam, and parallel_muon's NCCL reduce-scatter / all-gather on two GPUs (the weights of
plain Muon, to the bit). Skips without CUDA; run with bash bench/device_gpu_tests.sh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from golfc.build import build_submission
from golfc.testing import TINY_RUN_ENV, load_program
from tests.muon_reference import newton_schulz

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

ENV = {"VOCAB_SIZE": "64", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1"}


def test_muon_compiles_polar_express_on_cuda_as_close_to_exact_as_cpu_bf16():
    ns = load_program(("polar_ns",), env={**ENV, "DEVICE": "cuda"})
    torch.manual_seed(0)
    G = torch.randn(6, 128, 512)
    exact = torch.stack([torch.from_numpy(newton_schulz(g.double().numpy(), ns["POLAR_NS_COEFFS"])) for g in G])
    cpu = ns["polar_express_ns"](G, 5).double()
    ctx = ns["RunContext"](0, 1, 0, torch.device("cuda"), True, False, 8)
    opt = ns["Muon"]([torch.nn.Parameter(torch.zeros(128, 512, device="cuda"))], lr=0.1, momentum=0.9,
                     backend_steps=5, ctx=ctx, compile_ns=True, h=ns["Hyperparameters"]())
    gpu = opt.newton_schulz(G.cuda(), 5).double().cpu()  # torch.compile(PolarExpress.orthogonalise)

    def error(x):
        return ((x - exact).norm() / exact.norm()).item()

    assert error(gpu) < 1.5 * error(cpu) + 1e-3, (error(gpu), error(cpu))


def test_fused_adam_with_decoupled_decay_steps_as_cpu_adamw():
    ns = load_program(("weight_decay",), env={**ENV, "DEVICE": "cuda"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h).cuda()
    adam, _ = ns["build_optimizers"](model, h, ns["RunContext"](0, 1, 0, torch.device("cuda"), True, False, 8))
    assert adam.defaults["fused"] and all(g["decoupled_weight_decay"] for g in adam.param_groups)
    ref = [[p.detach().cpu().clone().requires_grad_() for p in g["params"]] for g in adam.param_groups]
    adamw = torch.optim.AdamW([{"params": r, "lr": g["lr"], "weight_decay": g["weight_decay"]}
                               for r, g in zip(ref, adam.param_groups)], betas=(h.beta1, h.beta2), eps=h.adam_eps)
    for seed in (1, 2, 3):
        generator = torch.Generator().manual_seed(seed)
        for g, rs in zip(adam.param_groups, ref):
            for p, r in zip(g["params"], rs):
                r.grad = torch.randn(r.shape, generator=generator)
                p.grad = r.grad.cuda()
        adam.step()
        adamw.step()
    for g, rs in zip(adam.param_groups, ref):
        for p, r in zip(g["params"], rs):
            torch.testing.assert_close(p.detach().cpu(), r.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_parallel_muon_on_two_gpus_gives_the_weights_of_plain_muon(tmp_path, tiny_dataset):
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "rank_weights.py")
    env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, "DEVICE": "cuda", "ITERATIONS": "6"}
    finals = {}
    for name, plugins in (("plain", ()), ("parallel", ("parallel_muon",))):
        out = build_submission(plugins, {}, tmp_path / name).out_dir
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                 tool, "run", "train_gpt.src.py", "--keep", "kept"], cwd=out,
                                env={**env, "RUN_ID": name}, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        compared = subprocess.run([sys.executable, tool, "compare", "kept"], cwd=out, capture_output=True, text=True,
                                  timeout=300)
        assert compared.stdout.strip() == "2 ranks: identical weights", compared.stdout
        finals[name] = torch.load(out / "final_model.pt", map_location="cpu")
    assert all(torch.equal(finals["plain"][k], finals["parallel"][k]) for k in finals["plain"])
