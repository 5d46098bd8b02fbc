"""GPU-only paths against CPU references.

These need a CUDA GPU, so CI (CPU only) skips them; they are run on the device machine with
`bash bench/device_gpu_tests.sh`, and the outcome is recorded in bench/RESULTS.md. Each test computes the
same thing twice: on the GPU the way a training run does (bf16 autocast, cuDNN/flash attention, torch.compile,
fused Adam) and on the CPU in fp32 eager mode, and compares within bf16 tolerances.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from golfc.build import build_submission
from golfc.testing import TINY_RUN_ENV, load_program, relative_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

# Small, but with the baseline's head_dim (64) and GQA ratio (2), so the GPU kernels take their real paths.
SMALL = {"NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "256"}
FINAL = re.compile(r"^final_int8_zlib_roundtrip_exact val_loss:(\d+\.\d+) val_bpb:(\d+\.\d+)$", re.M)


@pytest.fixture(scope="module")
def ns():
    return load_program(overrides={"DEVICE": "cuda"}, env=SMALL)


class Backend:
    def __init__(self, name: str) -> None:
        self.sdpa_backend = name


def causal_reference(q, k, v):
    """fp32 causal softmax attention with k/v heads repeated to the query heads."""
    groups = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-1, -2) / q.size(-1) ** 0.5
    T = q.size(2)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


def to_gpu_leaf(t: torch.Tensor, memory_order: str) -> torch.Tensor:
    """A bf16 CUDA leaf (B, H, T, D): contiguous, or a transposed view of (B, T, H, D) memory as the core passes."""
    if memory_order == "bhtd":
        return t.cuda().bfloat16().requires_grad_()
    return t.transpose(1, 2).contiguous().cuda().bfloat16().requires_grad_()  # (B, T, H, D) leaf


@pytest.mark.parametrize("memory_order", ["bhtd", "bthd"])
@pytest.mark.parametrize("backend", ["auto", "cudnn", "flash", "efficient", "math"])
def test_attention_backends_match_fp32_cpu_attention(ns, backend, memory_order):
    torch.manual_seed(0)
    q, k, v = torch.randn(4, 8, 256, 64), torch.randn(4, 4, 256, 64), torch.randn(4, 4, 256, 64)
    dy = torch.randn(4, 8, 256, 64)
    cpu = [t.clone().requires_grad_() for t in (q, k, v)]
    y_cpu = causal_reference(*cpu)
    y_cpu.backward(dy)
    leaves = [to_gpu_leaf(t, memory_order) for t in (q, k, v)]
    gpu = leaves if memory_order == "bhtd" else [t.transpose(1, 2) for t in leaves]  # (B, H, T, D) either way
    y_gpu = ns["sdpa_attention"](*gpu, Backend(backend))
    y_gpu.backward(dy.cuda().bfloat16())
    torch.testing.assert_close(y_gpu.float().cpu(), y_cpu, atol=2e-2, rtol=2e-2)
    for leaf, c in zip(leaves, cpu):
        g = leaf.grad if memory_order == "bhtd" else leaf.grad.transpose(1, 2)
        torch.testing.assert_close(g.float().cpu(), c.grad, atol=6e-2, rtol=5e-2)


def test_cudnn_attention_returns_y_in_the_memory_order_of_q(ns):
    """What the core's (B, T, H, D) memory order relies on for its speed (bench/RESULTS.md, call 13): cuDNN
    hands y back in q's memory order, so y.transpose(1, 2) is contiguous and merging the heads copies nothing."""
    q = torch.randn(4, 256, 8, 64, device="cuda", dtype=torch.bfloat16).transpose(1, 2)  # (B, H, T, D) view
    k, v = (torch.randn(4, 256, 4, 64, device="cuda", dtype=torch.bfloat16).transpose(1, 2) for _ in range(2))
    y = ns["sdpa_attention"](q, k, v, Backend("cudnn"))
    assert y.shape == (4, 8, 256, 64)
    assert y.transpose(1, 2).is_contiguous()


def newton_schulz_fp64(ns, G, steps):
    """The same quintic iteration in fp64: the exact math both bf16 paths approximate."""
    a, b, c = ns["MUON_NS_COEFFS"]
    X = G.double()
    X = X / (torch.linalg.vector_norm(X, dim=(1, 2), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * (A @ A)) @ X
    return X


def test_compiled_batched_newton_schulz_is_as_close_to_exact_as_cpu_bf16(ns):
    """bf16 rounding differs between eager CPU ops and fused GPU kernels (a few percent after 5 iterations), so
    both are measured against the fp64 iteration: the GPU path must be no further from it than the CPU path."""
    torch.manual_seed(0)
    G = torch.randn(6, 128, 512)
    exact = newton_schulz_fp64(ns, G, 5).float()
    cpu = ns["muon_newton_schulz"](G, 5).float()
    gpu = torch.compile(ns["muon_newton_schulz"])(G.cuda(), 5).float().cpu()
    assert gpu.shape == (6, 128, 512)
    cpu_error, gpu_error = relative_error(cpu, exact), relative_error(gpu, exact)
    assert gpu_error < 5e-2 and gpu_error < 1.5 * cpu_error, (gpu_error, cpu_error)
    # and it orthogonalises: singular values of the result sit near 1 (the quintic lands them in about [0.7, 1.2])
    s = torch.linalg.svdvals(gpu)
    assert 0.5 < s.min().item() and s.max().item() < 1.3


def make_model(ns, seed: int = 0):
    torch.manual_seed(seed)
    return ns["GPT"](ns["Hyperparameters"]())


def test_compiled_bf16_model_matches_fp32_cpu_model(ns):
    h = ns["Hyperparameters"]()
    cpu_model = make_model(ns)
    for block in cpu_model.stack.blocks:  # zero-initialised projections would hide the blocks: give them weights
        torch.nn.init.normal_(block.attn.proj.weight, std=0.02)
        torch.nn.init.normal_(block.mlp.proj.weight, std=0.02)
    gpu_model = make_model(ns)
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model = gpu_model.cuda()
    ns["cast_params_for_training"](gpu_model, torch.device("cuda"))
    torch.manual_seed(1)
    ids = torch.randint(0, h.vocab_size, (4, h.train_seq_len))
    targets = torch.randint(0, h.vocab_size, (4, h.train_seq_len))

    loss_cpu = cpu_model(ids, targets)
    loss_cpu.backward()
    compiled = torch.compile(gpu_model, dynamic=False, fullgraph=True)
    with ns["bf16_autocast"](torch.device("cuda")):
        loss_gpu = compiled(ids.cuda(), targets.cuda())
    loss_gpu.backward()

    assert loss_gpu.item() == pytest.approx(loss_cpu.item(), rel=5e-3)
    cpu_params = dict(cpu_model.named_parameters())
    for name, p in gpu_model.named_parameters():
        g_cpu, g_gpu = cpu_params[name].grad.flatten(), p.grad.float().cpu().flatten()
        cosine = F.cosine_similarity(g_cpu, g_gpu, dim=0).item()
        assert cosine > 0.99, f"{name}: gradient cosine {cosine:.4f} between GPU and CPU"
    with torch.no_grad(), ns["bf16_autocast"](torch.device("cuda")):
        nll = compiled(ids.cuda(), targets.cuda(), reduction="none")
    assert nll.shape == targets.shape and nll.dtype == torch.float32
    assert nll.mean().item() == pytest.approx(loss_gpu.item(), rel=1e-3)


def test_optimizer_step_on_gpu_matches_cpu(ns):
    """One step of every optimizer (fused Adam and compiled Muon on the GPU) from the same weights and gradients."""
    h = ns["Hyperparameters"]()
    before = make_model(ns).state_dict()
    updates = []
    for device in ("cpu", "cuda"):
        model = make_model(ns).to(device)
        ctx = ns["RunContext"](0, 1, 0, torch.device(device), True, False, 8)
        optimizers = ns["build_optimizers"](model, h, ctx)
        torch.manual_seed(2)
        for p in model.parameters():
            p.grad = torch.randn(p.shape).to(device) * 1e-2
        ns["apply_schedule"](optimizers, 0, 0.0, h)
        for opt in optimizers:
            opt.step()
        updates.append({k: v.detach().float().cpu() - before[k] for k, v in model.state_dict().items()})
        muon_ids = {id(p) for opt in optimizers if type(opt).__name__ == "Muon" for g in opt.param_groups
                    for p in g["params"]}
        muon_names = {name for name, p in model.named_parameters() if id(p) in muon_ids}
    assert muon_names and len(muon_names) < len(updates[0])  # both optimizers are exercised
    for name, cpu_update in updates[0].items():
        assert cpu_update.abs().max().item() > 0, f"{name} did not move"
        # Adam is elementwise fp32: near exact. Muon's bf16 Newton-Schulz differs by a few percent between the
        # eager CPU ops and the fused GPU kernels (see the test above, which bounds it against fp64).
        tolerance = 6e-2 if name in muon_names else 1e-4
        assert relative_error(updates[1][name], cpu_update) < tolerance, name


def test_bpb_tables_on_gpu_equal_cpu(ns, tiny_dataset):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_dataset.tokenizer_path))
    cpu = ns["build_bpb_luts"](sp, sp.get_piece_size(), torch.device("cpu"))
    gpu = ns["build_bpb_luts"](sp, sp.get_piece_size(), torch.device("cuda"))
    for c, g in zip(cpu, gpu):
        assert g.device.type == "cuda"
        assert torch.equal(g.cpu(), c)


def test_emitted_program_trains_on_gpu_like_on_cpu(tmp_path, tiny_dataset):
    out = build_submission((), {}, tmp_path).out_dir
    finals = {}
    for device in ("cpu", "cuda"):
        env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, "DEVICE": device, "ITERATIONS": "4",
               "WARMDOWN_ITERS": "0", "RUN_ID": f"gpu_parity_{device}"}
        result = subprocess.run([sys.executable, "train_gpt.py"], cwd=out, env=env, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        expected_compile = "compile:True" if device == "cuda" else "compile:False"
        assert f"device:{device}" in result.stdout and expected_compile in result.stdout
        finals[device] = float(FINAL.search(result.stdout).group(2))
    assert finals["cuda"] == pytest.approx(finals["cpu"], abs=0.05)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpu_ranks_end_with_identical_weights_under_a_wallclock_cap(tmp_path, tiny_dataset):
    """NCCL gradients, the shared Muon updates and the clock agreed over gloo leave both ranks' weights equal to
    the bit, with the LR read from the clock at every step (WARMDOWN_ITERS far beyond the run)."""
    out = build_submission((), {}, tmp_path / "build").out_dir
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "rank_weights.py")
    env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, "DEVICE": "cuda", "ITERATIONS": "6",
           "MAX_WALLCLOCK_SECONDS": "600", "WARMDOWN_ITERS": "1000000", "RUN_ID": "gpu_ranks"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             tool, "run", "train_gpt.src.py", "--keep", "kept"], cwd=out, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size:2 grad_accum_steps:4" in result.stdout and "device:cuda:0 compile:True" in result.stdout
    compared = subprocess.run([sys.executable, tool, "compare", "kept"], cwd=out, capture_output=True, text=True,
                              timeout=300)
    assert compared.returncode == 0 and compared.stdout.strip() == "2 ranks: identical weights", compared.stdout
