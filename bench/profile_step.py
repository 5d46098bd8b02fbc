"""Where one training step's GPU time goes, and what candidate changes would save, on one GPU.

Usage (on the device): python bench/profile_step.py PROGRAM.src.py [--variants base,muon_per_matrix,...] [--json OUT]
                             [--rank-of N]
Variants: base, fused_qkv, muon_lean, muon_per_matrix, attn_bhtd, cudagraphs, autotune, aggressive_fusion,
coordinate_descent, autotune_pointwise, combo_kernels,
multi_kernel (see VARIANTS; results in bench/RESULTS.md).

Loads a built program without running main(), builds its model and optimizers exactly as main() does
(compiled, bf16 autocast, the real per-GPU micro-batch of 64 x 1024 and 8 micro-batches per step) on
random tokens, and measures:
- ms/step per variant (median of CUDA-event timings over 20 steps after 15 warm-up steps); a variant
  monkeypatches the loaded program (see VARIANTS), so all variants run in one process on one GPU;
- with ``--rank-of N``, what one rank of an N-GPU run computes, on this one GPU: 8 / N micro-batches per step
  and Muon orthogonalising only rank 0's share of the matrices (no communication: it is left out);
- the host's own time per step (launching, without waiting for the GPU): when it is close to the GPU's
  step time, the step is host-bound;
- for the first variant, a torch.profiler trace of 3 steps: GPU time per kernel (top 30), per kind of
  kernel (matmul, attention, Triton-fused elementwise, optimizer, copies, NCCL, other), and how much
  of the step the GPU sits idle (host-bound launch gaps).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paced_run import exec_program

KINDS = (  # first match wins; patterns are matched against the lower-cased kernel name
    ("triton fused", r"^triton_"),
    ("attention", r"cudnn|fmha|flash|attention|sdpa"),
    ("matmul", r"gemm|nvjet|cutlass|sm90_xmma|ampere_|cublas"),
    ("nccl", r"nccl"),
    ("optimizer", r"adam|foreach|multi_tensor"),
    ("copy/cast", r"copy|memcpy|memset|cast|fill"),
)


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, lowered):
            return kind
    return "other"


def finish_attention(g: dict, attn, q, k, v, x, fctx=None):
    """What the program's CausalSelfAttention does after RoPE and q_gain: the q/k hooks, the kernel, the
    attention-output modules and the projection. q (B, H, T, D), k (B, Hkv, T, D), v (B, T, Hkv, D), x (B, T, d)."""
    B, T = v.shape[:2]
    for fn in g["QK_TRANSFORMS"]:
        q, k = fn(q, k, attn.layer, attn.h)
    y = g["attention_kernel"](q, k, v.transpose(1, 2), attn.h, attn.layer, fctx).transpose(1, 2)  # (B, T, H, D)
    for post in attn.post:
        y = post(y, v, x, fctx)
    return attn.proj(y.reshape(B, T, -1))


def patch_fused_qkv(g: dict) -> None:
    """q, k and v from one matmul against the concatenated weights (same values, one GEMM instead of 3)."""
    cls = g["CausalSelfAttention"]
    rms_norm, F = g["rms_norm"], g["F"]

    def forward(self, x, fctx=None):
        B, T, _ = x.shape
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        w = torch.cat((self.c_q.weight, self.c_k.weight, self.c_v.weight)).to(x.dtype)
        q, k, v = F.linear(x, w).split((H * D, Hkv * D, Hkv * D), dim=-1)
        q = self.rotary(rms_norm(q.reshape(B, T, H, D)))  # (B, T, H, D)
        k = self.rotary(rms_norm(k.reshape(B, T, Hkv, D)))
        q = q * self.q_gain.to(q.dtype)[None, None, :, None]
        return finish_attention(g, self, q.transpose(1, 2), k.transpose(1, 2), v.reshape(B, T, Hkv, D), x, fctx)

    cls.forward = forward


def patch_attn_bhtd(g: dict) -> None:
    """The layout before call 13: QK-norm and RoPE on (B, H, T, D)-ordered copies of q and k, so that SDPA's
    output comes back (B, H, T, D)-ordered and merging the heads costs a transpose copy. Same values."""
    cls = g["CausalSelfAttention"]
    rms_norm = g["rms_norm"]

    def rope_bhtd(rotary, x):  # x (B, H, T, D)
        T = x.size(2)
        cos = rotary.cos[0, :T, 0].to(x.dtype)  # (T, D/2)
        sin = rotary.sin[0, :T, 0].to(x.dtype)
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)

    def forward(self, x, fctx=None):
        B, T, _ = x.shape
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.c_q(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.c_k(x).view(B, T, Hkv, D).transpose(1, 2)  # (B, Hkv, T, D)
        q, k = rope_bhtd(self.rotary, rms_norm(q)), rope_bhtd(self.rotary, rms_norm(k))
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        return finish_attention(g, self, q, k, self.c_v(x).view(B, T, Hkv, D), x, fctx)

    cls.forward = forward


def patch_muon_per_matrix(g: dict) -> None:
    """Muon.step as it was until session 5 (adopted form: multi-tensor ops per stack): momentum per shape group,
    each update scaled and copied into a flat bf16 buffer matrix by matrix, then cast to fp32 matrix by matrix."""
    cls, dist = g["Muon"], g["dist"]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = group["params"]
            offsets = [0]
            for p in params[:-1]:
                offsets.append(offsets[-1] + p.numel())
            flat = torch.zeros(offsets[-1] + params[-1].numel(), device=params[0].device, dtype=torch.bfloat16)
            for stack in self._my_stacks(params):
                m = group["momentum"]
                grads = [params[i].grad for i in stack]
                bufs = []
                for i in stack:
                    state = self.state[params[i]]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(params[i].grad)
                    bufs.append(state["momentum_buffer"])
                torch._foreach_mul_(bufs, m)
                torch._foreach_add_(bufs, grads)
                nesterov = torch._foreach_add(grads, bufs, alpha=m)
                transposed = [g_.size(0) > g_.size(1) for g_ in nesterov]
                X = self.newton_schulz(torch.stack([g_.mT if t_ else g_ for g_, t_ in zip(nesterov, transposed)]),
                                       group["backend_steps"])
                for x, i, t_ in zip(X, stack, transposed):
                    x = x.mT if t_ else x
                    scale = max(1.0, params[i].size(0) / params[i].size(1)) ** 0.5
                    flat[offsets[i] : offsets[i] + params[i].numel()] = (x * scale).reshape(-1)
            if self.distributed:
                dist.all_reduce(flat)
            updates = [flat[o : o + p.numel()].view_as(p).to(p.dtype) for o, p in zip(offsets, params)]
            torch._foreach_add_(params, updates, alpha=-group["lr"])

    cls.step = step


def compile_mode(mode: str):
    """A variant that compiles the model with torch.compile(mode=...) instead of the default mode."""

    def patch(g: dict) -> None:
        g["_profile_compile_mode"] = mode

    return patch


def inductor_config(**settings):
    """A variant that compiles with these torch._inductor.config settings (restored afterwards)."""

    def patch(g: dict) -> None:
        g["_profile_inductor_config"] = settings

    return patch


VARIANTS = {
    "base": lambda g: None,
    "fused_qkv": patch_fused_qkv,
    "muon_lean": lambda g: None,  # adopted in session 5: the program's own Muon.step is this candidate now
    "muon_per_matrix": patch_muon_per_matrix,
    "attn_bhtd": patch_attn_bhtd,
    "cudagraphs": compile_mode("reduce-overhead"),  # CUDA graphs (cudagraph trees) for forward and backward
    "autotune": compile_mode("max-autotune-no-cudagraphs"),  # Triton GEMM templates with fused epilogues
    "aggressive_fusion": inductor_config(aggressive_fusion=True),  # fuse nodes even without shared reads
    "coordinate_descent": inductor_config(coordinate_descent_tuning=True),  # tune Triton block sizes
    "autotune_pointwise": inductor_config(max_autotune_pointwise=True),  # benchmark configs of Triton kernels
    "combo_kernels": inductor_config(combo_kernels=True),  # fuse independent neighbouring kernels horizontally
    "multi_kernel": inductor_config(**{"triton.multi_kernel": 1}),  # pick persistent or looped reductions at run time
}


def build_step(g: dict):
    """The program's model, optimizers and a train-step closure on fixed random tokens."""
    h = g["Hyperparameters"]()
    ctx = g["init_distributed"](h)
    torch.manual_seed(h.seed)
    base = g["GPT"](h).to(ctx.device)
    g["cast_params_for_training"](base, ctx.device)
    if g.get("_profile_compile_mode") == "reduce-overhead":  # see step() below
        for p in base.parameters():
            p.grad = torch.zeros_like(p)
    model = torch.compile(base, dynamic=False, fullgraph=True, mode=g.get("_profile_compile_mode"))
    rank_of = g.get("_profile_rank_of", 1)
    ctx.grad_accum_steps = 8 // rank_of  # one rank of rank_of GPUs (1: the whole step on this GPU)
    optimizers = g["build_optimizers"](base, h, ctx)
    for opt in optimizers:
        if rank_of > 1 and hasattr(opt, "world_size"):
            opt.world_size, opt.rank = rank_of, 0  # Muon: rank 0's share of the matrices, no all-reduce
    rows = h.train_batch_tokens // (rank_of * ctx.grad_accum_steps * h.train_seq_len)  # 64 at the defaults
    x = torch.randint(0, h.vocab_size, (rows, h.train_seq_len), device=ctx.device)
    y = torch.randint(0, h.vocab_size, (rows, h.train_seq_len), device=ctx.device)

    cuda_graphs = g.get("_profile_compile_mode") == "reduce-overhead"

    def fill_grads() -> None:
        """Forward and backward over every micro-batch: gradients accumulate in .grad."""
        for _ in range(ctx.grad_accum_steps):
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()  # each micro-batch is a new replay
            with g["bf16_autocast"](ctx.device):
                loss = model(x, y)
            (loss / ctx.grad_accum_steps).backward()

    def step(i: int) -> None:
        g["apply_schedule"](optimizers, i, 0.0, h)
        fill_grads()
        for opt in optimizers:
            opt.step()
        # Under CUDA graphs a first backward would hand its graph-owned output buffers over as .grad, which the
        # next replay overwrites: keep persistent .grad tensors there, so that gradients accumulate into them.
        base.zero_grad(set_to_none=not cuda_graphs)

    step.optimizers, step.fill_grads, step.rows, step.micro_batches = optimizers, fill_grads, rows, ctx.grad_accum_steps
    return step


def time_optimizers(step, reps: int = 20) -> dict:
    """GPU ms (CUDA events, GPU otherwise idle) and host ms (launch only, no sync) of each optimizer's step."""
    step.fill_grads()
    out = {}
    for opt in step.optimizers:
        for _ in range(3):
            opt.step()
        torch.cuda.synchronize()
        gpu, host = [], []
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            t = time.perf_counter()
            opt.step()
            host.append(1000.0 * (time.perf_counter() - t))
            end.record()
            torch.cuda.synchronize()
            gpu.append(start.elapsed_time(end))
        out[type(opt).__name__] = {"gpu_ms": statistics.median(gpu), "host_ms": statistics.median(host)}
    return out


def time_steps(step, warmup: int = 15, reps: int = 20) -> tuple[float, float]:
    """(GPU ms per step, host ms per step): medians over ``reps`` steps, each started on an idle GPU."""
    for i in range(warmup):
        step(i)
    torch.cuda.synchronize()
    times, host = [], []
    for i in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        t = time.perf_counter()
        step(warmup + i)
        host.append(1000.0 * (time.perf_counter() - t))
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), statistics.median(host)


def profile_steps(step, n: int = 3) -> dict:
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(n):
            step(100 + i)
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
               and "#" not in e.name]  # "Optimizer.step#Muon.step" etc.: annotations, not kernels
    per_kernel: dict[str, float] = defaultdict(float)
    per_kind: dict[str, float] = defaultdict(float)
    for e in kernels:
        us = e.time_range.elapsed_us()  # a kernel event's own duration on the GPU
        per_kernel[e.name] += us / 1000.0 / n
        per_kind[kernel_kind(e.name)] += us / 1000.0 / n
    spans = sorted((e.time_range.start, e.time_range.end) for e in kernels)
    busy, cur_start, cur_end = 0.0, None, None
    for s, t in spans:  # union of kernel intervals = time the GPU is doing something
        if cur_end is None or s > cur_end:
            if cur_end is not None:
                busy += cur_end - cur_start
            cur_start, cur_end = s, t
        else:
            cur_end = max(cur_end, t)
    if cur_end is not None:
        busy += cur_end - cur_start
    wall = (spans[-1][1] - spans[0][0]) if spans else 0.0
    top = sorted(per_kernel.items(), key=lambda kv: -kv[1])[:30]
    return {
        "gpu_busy_ms_per_step": busy / 1000.0 / n,
        "gpu_span_ms_per_step": wall / 1000.0 / n,
        "per_kind_ms": dict(sorted(per_kind.items(), key=lambda kv: -kv[1])),
        "top_kernels_ms": top,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program", type=Path)
    parser.add_argument("--variants", default="base,muon_per_matrix")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-profile", action="store_true", help="skip the torch.profiler trace")
    parser.add_argument("--rank-of", type=int, default=1, choices=(1, 2, 4, 8),
                        help="time what one rank of an N-GPU run computes (8/N micro-batches, 1/N of Muon)")
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; expected some of {sorted(VARIANTS)}")
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "runs": []}
    for i, name in enumerate(names):
        g = exec_program(args.program, "golfc_profile")  # a fresh program per variant: patches do not leak
        VARIANTS[name](g)
        g["_profile_rank_of"] = args.rank_of
        torch._dynamo.reset()
        try:
            with torch._inductor.config.patch(**g.get("_profile_inductor_config", {})):
                t_compile = time.perf_counter()
                step = build_step(g)
                step(0)  # compiles
                print(f"{name}: compiled in {time.perf_counter() - t_compile:.0f} s", flush=True)
                (ms, host_ms), opt_times = time_steps(step), time_optimizers(step)
        except Exception as exc:  # one broken variant must not hide the others
            print(f"{name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
            results["runs"].append({"variant": name, "error": f"{type(exc).__name__}: {exc}"[:2000]})
            continue
        results["runs"].append(
            {"variant": name, "rank_of": args.rank_of, "ms_per_step": ms, "host_ms_per_step": host_ms,
             "optimizers": opt_times}
        )  # a name may repeat
        opt_text = ", ".join(f"{k} {v['gpu_ms']:.2f} GPU / {v['host_ms']:.2f} host ms" for k, v in opt_times.items())
        print(f"{name}: {ms:.2f} ms/step (host {host_ms:.2f} ms); optimizer steps: {opt_text}", flush=True)
        if i == 0 and not args.no_profile:
            results["profile"] = prof = profile_steps(step)
            busy, span = prof["gpu_busy_ms_per_step"], prof["gpu_span_ms_per_step"]
            print(f"GPU busy {busy:.1f} ms of a {span:.1f} ms span per step")
            for kind, ms_kind in prof["per_kind_ms"].items():
                print(f"  {kind:<14} {ms_kind:8.2f} ms/step")
            for kname, ms_k in prof["top_kernels_ms"]:
                print(f"  {ms_k:8.2f}  {kname[:110]}")
        del step
        torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
