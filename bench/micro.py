"""Micro-benchmarks of the baseline's hot spots on one GPU, at the real per-GPU shapes.

Usage (on the device): python bench/micro.py PROGRAM.src.py [--json OUT.json]

- attention: causal GQA SDPA fwd+bwd for q (64, 8, 1024, 64), k/v (64, 4, 1024, 64), bf16, per backend,
  with native GQA (enable_gqa) and with k/v expanded; also whether each compiles under fullgraph;
- Newton-Schulz: the 54 block matrices of the default model, one call per matrix vs one batched call per
  shape group (both torch.compile'd), i.e. the Muon step's orthogonalisation;
- softcapped cross-entropy over the 1024-token vocabulary for 65,536 positions, eager vs compiled.
Times are medians of CUDA-event timings after warm-up.
"""

from __future__ import annotations

import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def cuda_time_ms(fn, warmup: int = 5, reps: int = 20) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def bench_attention() -> dict:
    torch.manual_seed(0)
    q = torch.randn(64, 8, 1024, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(64, 4, 1024, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(64, 4, 1024, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dy = torch.randn(64, 8, 1024, 64, device="cuda", dtype=torch.bfloat16)
    results = {}
    reference = None
    for name, backend in BACKENDS.items():
        for gqa in ("native", "expanded"):

            def fwd(q=q, k=k, v=v, backend=backend, gqa=gqa):
                with sdpa_kernel(backend):
                    if gqa == "native":
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    ke, ve = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
                    return F.scaled_dot_product_attention(q, ke, ve, is_causal=True)

            key = f"{name}/{gqa}"
            try:
                y = fwd()
                if reference is None:
                    reference = y.float()
                err = ((y.float() - reference).norm() / reference.norm()).item()
                ms = cuda_time_ms(lambda: torch.autograd.backward(fwd(), dy))
                compiled = torch.compile(fwd, fullgraph=True)
                try:
                    compiled(q, k, v)
                    compiles = True
                except Exception as exc:
                    compiles = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                results[key] = {"fwd_bwd_ms": round(ms, 3), "rel_err_vs_first": err, "compiles_fullgraph": compiles}
            except Exception as exc:
                results[key] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            print(f"attention {key:18s} {results[key]}", flush=True)
    return results


def bench_newton_schulz(ns: dict) -> dict:
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h).cuda()
    mats = [m.weight for m in model.modules() if isinstance(m, ns["CastedLinear"])]
    grads = [torch.randn_like(w) for w in mats]
    ns_fn = torch.compile(ns["muon_newton_schulz"])

    def per_matrix():
        for g in grads:
            x = g.mT if g.size(0) > g.size(1) else g
            ns_fn(x[None], 5)

    groups: dict = {}
    for g in grads:
        x = g.mT if g.size(0) > g.size(1) else g
        groups.setdefault(tuple(x.shape), []).append(x)
    stacks = [torch.stack(xs) for xs in groups.values()]

    def batched():
        for s in stacks:
            ns_fn(s, 5)

    out = {
        "matrices": len(grads),
        "shape_groups": {str(k): len(v) for k, v in groups.items()},
        "per_matrix_ms": round(cuda_time_ms(per_matrix), 3),
        "batched_ms": round(cuda_time_ms(batched), 3),
    }
    print(f"newton-schulz {out}", flush=True)
    return out


def bench_softcap_ce() -> dict:
    torch.manual_seed(0)
    x = torch.randn(65536, 512, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    w = (torch.randn(1024, 512, device="cuda", dtype=torch.bfloat16) * 0.02).requires_grad_()
    y = torch.randint(0, 1024, (65536,), device="cuda")

    def loss_fn(x, w, y):
        logits = F.linear(x, w).float()
        logits = 30.0 * torch.tanh(logits / 30.0)
        return F.cross_entropy(logits, y)

    compiled = torch.compile(loss_fn, fullgraph=True)
    out = {
        "eager_fwd_bwd_ms": round(cuda_time_ms(lambda: loss_fn(x, w, y).backward()), 3),
        "compiled_fwd_bwd_ms": round(cuda_time_ms(lambda: compiled(x, w, y).backward()), 3),
    }
    print(f"softcap-ce {out}", flush=True)
    return out


def main() -> None:
    program = sys.argv[1]
    ns: dict = {"__name__": "golfc_bench"}
    exec(compile(open(program).read(), program, "exec"), ns)
    results = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "attention": bench_attention(),
        "newton_schulz": bench_newton_schulz(ns),
        "softcap_ce": bench_softcap_ce(),
    }
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
