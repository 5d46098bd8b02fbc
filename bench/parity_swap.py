"""Swap one component at a time between golfc and the reference: which of model and optimizer trains apart?

In one process, the reference script is imported (its main() does not run) and a golfc program's sections are
executed (its main() does not run either). Every variant starts from the same initial weights (the reference's,
copied into golfc's model with names mapped), reads the same batches (the reference's loader) and follows the
reference's schedule for ITERATIONS steps without a cap (lr multiplier (ITERATIONS - step) / WARMDOWN_ITERS
inside the warmdown, Muon momentum warmed up from 0.85), compiled as each program compiles. Variants:
  ref/ref      the reference's model and optimizers  (should track the reference's own log)
  golfc/golfc  golfc's model and optimizers           (should track golfc's own log)
  ref/golfc    the reference's model, golfc's optimizers
  golfc/ref    golfc's model, the reference's optimizers
  golfc+rt/X   golfc's model with its RoPE tables replaced by the reference's, as its compiled graph builds
               them on this device (bench/rope_tables.py)
Prints the train loss of every variant at the logged steps, and writes them as JSON with --json.

Usage (CUDA): python bench/parity_swap.py --reference REF.py --program BUILD/train_gpt.src.py --steps 100 \\
    --run-iterations 300 --variants ref/ref,golfc/golfc,ref/golfc,golfc/ref
(environment: DATA_PATH, TOKENIZER_PATH, VOCAB_SIZE as for the programs)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def import_reference(path: Path) -> ModuleType:
    """The reference script as a module (a real module, so that torch.compile can resolve its globals)."""
    spec = importlib.util.spec_from_file_location("reference_train_gpt", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_golfc(path: Path) -> dict:
    program = {"__name__": "golfc_swap", "__file__": str(path), "__builtins__": __builtins__}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), program)
    return program


def reference_model(R: ModuleType, a, device):
    """The reference's GPT exactly as its main() builds it (bf16 cast, linears and control tensors back to fp32)."""
    model = R.GPT(vocab_size=a.vocab_size, num_layers=a.num_layers, model_dim=a.model_dim, num_heads=a.num_heads,
                  num_kv_heads=a.num_kv_heads, mlp_mult=a.mlp_mult, tie_embeddings=a.tie_embeddings,
                  tied_embed_init_std=a.tied_embed_init_std, logit_softcap=a.logit_softcap, rope_base=a.rope_base,
                  qk_gain_init=a.qk_gain_init).to(device).bfloat16()
    for module in model.modules():
        if isinstance(module, R.CastedLinear):
            module.float()
    R.restore_low_dim_params_to_fp32(model)
    return model


def golfc_model(G: dict, h, device, init_state: dict):
    """golfc's GPT as its main() builds it, then given the reference's initial weights (names mapped)."""
    model = G["GPT"](h).to(device)
    G["cast_params_for_training"](model, device)
    own = model.state_dict()
    mapped = {}
    for name, tensor in init_state.items():
        target = name if name in own else f"stack.{name}"
        mapped[target] = tensor.to(own[target].dtype)
    model.load_state_dict(mapped, strict=True)
    return model


def reference_optimizers(R: ModuleType, model, a):
    """The reference's optimizer split (token Adam, Muon on block matrices, scalar Adam) for either model."""
    patterns = R.CONTROL_TENSOR_NAME_PATTERNS
    matrix, scalar = [], []
    for name, p in model.named_parameters():
        if name == "tok_emb.weight":
            continue
        in_blocks = "blocks." in name
        (matrix if in_blocks and p.ndim == 2 and not any(s in name for s in patterns) else scalar).append(p)
    tok = torch.optim.Adam([{"params": [model.tok_emb.weight], "lr": a.tied_embed_lr, "base_lr": a.tied_embed_lr}],
                           betas=(a.beta1, a.beta2), eps=a.adam_eps, fused=True)
    muon = R.Muon(matrix, lr=a.matrix_lr, momentum=a.muon_momentum, backend_steps=a.muon_backend_steps)
    for group in muon.param_groups:
        group["base_lr"] = a.matrix_lr
    sca = torch.optim.Adam([{"params": scalar, "lr": a.scalar_lr, "base_lr": a.scalar_lr}],
                           betas=(a.beta1, a.beta2), eps=a.adam_eps, fused=True)
    optimizers = [tok, muon, sca]

    def schedule(step: int, scale: float) -> None:
        frac = min(step / a.muon_momentum_warmup_steps, 1.0)
        for group in muon.param_groups:
            group["momentum"] = (1 - frac) * a.muon_momentum_warmup_start + frac * a.muon_momentum
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale

    return optimizers, schedule


def golfc_optimizers(G: dict, R: ModuleType, model, h, ctx):
    """golfc's optimizers for either model (the reference's linears count as golfc's CastedLinear here)."""
    saved = G["CastedLinear"]
    if not isinstance(next(m for m in model.modules() if "Linear" in type(m).__name__), saved):
        G["CastedLinear"] = R.CastedLinear
    try:
        optimizers = G["build_optimizers"](model, h, ctx)
    finally:
        G["CastedLinear"] = saved

    def schedule(step: int, scale: float) -> None:
        G["apply_schedule"](optimizers, step, 0.0, h)

    return optimizers, schedule


def train(model, optimizers, schedule, loader, a, steps: int, iterations: int, log_steps: set[int]) -> dict[int, float]:
    device = next(model.parameters()).device
    compiled = torch.compile(model, dynamic=False, fullgraph=True) if device.type == "cuda" else model
    losses = {}
    for step in range(steps):
        schedule(step, max((iterations - step) / a.warmdown_iters, 0.0) if a.warmdown_iters > 0 else 1.0)
        total = torch.zeros((), device=device)
        for _ in range(8):
            x, y = loader.next_batch(a.train_batch_tokens, a.train_seq_len, 8)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = compiled(x, y)
            total += loss.detach()
            (loss / 8).backward()
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        if step + 1 in log_steps:
            losses[step + 1] = round((total / 8).item(), 4)
    return losses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--program", type=Path, required=True, help="a golfc train_gpt.src.py")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--run-iterations", type=int, default=300, help="ITERATIONS of the schedule followed")
    parser.add_argument("--variants", default="ref/ref,golfc/golfc,ref/golfc,golfc/ref")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to check the tool itself (fp32, eager)")
    args = parser.parse_args()
    os.environ["ITERATIONS"] = str(args.run_iterations)
    os.environ["MAX_WALLCLOCK_SECONDS"] = "0"
    R = import_reference(args.reference)
    G = load_golfc(args.program)
    a, h = R.Hyperparameters(), G["Hyperparameters"]()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(0)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        R.zeropower_via_newtonschulz5 = torch.compile(R.zeropower_via_newtonschulz5)
    from torch.backends.cuda import enable_cudnn_sdp, enable_flash_sdp, enable_math_sdp, enable_mem_efficient_sdp

    enable_cudnn_sdp(False), enable_flash_sdp(True), enable_mem_efficient_sdp(False), enable_math_sdp(False)
    os.environ.setdefault("SDPA_BACKEND", "flash")
    h.sdpa_backend = "flash" if device.type == "cuda" else "math"  # both on flash: the math is compared, not the kernel
    ctx = G["RunContext"](0, 1, 0, device, True, False, 8)
    log_steps = set(range(1, 11)) | set(range(25, args.steps + 1, 25))
    results = {}
    for variant in args.variants.split(","):
        model_side, opt_side = variant.split("/")
        torch.manual_seed(a.seed)
        ref = reference_model(R, a, device)
        init = {k: v.detach().clone() for k, v in ref.state_dict().items()}
        model = ref if model_side == "ref" else golfc_model(G, h, device, init)
        if model_side == "golfc+rt":
            from rope_tables import reference_tables

            cos, sin = reference_tables(R, a.model_dim // a.num_heads, a.rope_base, a.train_seq_len, device)
            for m in model.modules():
                if isinstance(m, G["Rotary"]):
                    m.cos, m.sin = cos[None, :, None].clone(), sin[None, :, None].clone()  # (1, T, 1, D/2)
        if opt_side == "ref":
            optimizers, schedule = reference_optimizers(R, model, a)
        else:
            optimizers, schedule = golfc_optimizers(G, R, model, h, ctx)
        loader = R.DistributedTokenLoader(a.train_files, 0, 1, device)
        started = time.perf_counter()
        results[variant] = train(model, optimizers, schedule, loader, a, args.steps, args.run_iterations, log_steps)
        losses = " ".join(f"{s}:{v}" for s, v in results[variant].items())
        print(f"{variant}: {time.perf_counter() - started:.0f} s {losses}", flush=True)
        del model, ref, optimizers
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
