"""What RoPE tables does the reference train with on this device? Its Rotary builds them inside the compiled
graph (the model is cast to bf16 first, so positions and frequencies are bf16), and inductor decides where
rounding happens. This builds them the reference's way (its Rotary class, bf16 module, compiled call under
bf16 autocast) and compares them with candidate formulas and with a golfc program's tables.

Usage: python bench/rope_tables.py --reference REF.py [--program BUILD/train_gpt.src.py ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity_swap import import_reference, load_golfc


def reference_tables(R, head_dim: int, base: float, seq_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (T, head_dim/2), as the reference's compiled forward caches them."""
    rotary = R.Rotary(head_dim, base=base).to(device).bfloat16()
    build = torch.compile(lambda: rotary(seq_len, device, torch.bfloat16), fullgraph=True)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        build()
    return rotary._cos_cached[0, 0], rotary._sin_cached[0, 0]


def candidates(head_dim: int, base: float, seq_len: int, device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    inv_b = inv.bfloat16().float()
    pos = torch.arange(seq_len, dtype=torch.float32, device=device)
    forms = {
        "bf16 positions, fp32 products": torch.outer(pos.bfloat16().float(), inv_b),
        "fp32 positions, fp32 products": torch.outer(pos, inv_b),
        "fp32 positions and frequencies": torch.outer(pos, inv),
    }
    out = {name: (f.cos().bfloat16(), f.sin().bfloat16()) for name, f in forms.items()}
    eager = torch.outer(pos.bfloat16(), inv.bfloat16())
    out["eager bf16 products"] = (eager.cos(), eager.sin())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--program", type=Path, action="append", default=[])
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    R = import_reference(args.reference)
    head_dim, base = 64, 10000.0
    cos, sin = reference_tables(R, head_dim, base, args.seq_len, device)
    rows = {}

    def compare(name: str, c: torch.Tensor, s: torch.Tensor) -> None:
        d = max((c.float() - cos.float()).abs().max().item(), (s.float() - sin.float()).abs().max().item())
        n = int(((c.float() != cos.float()) | (s.float() != sin.float())).sum().item())
        rows[name] = {"max_abs_diff": d, "entries_differing": n}
        print(f"{name:45s} max |diff| {d:.3e}  entries differing {n} of {2 * cos.numel()}")

    for name, (c, s) in candidates(head_dim, base, args.seq_len, device).items():
        compare(name, c, s)
    for program in args.program:
        G = load_golfc(program)
        rotary = G["Rotary"](head_dim, base, args.seq_len, G["Hyperparameters"].rope_bf16_tables).to(device)
        compare(f"golfc {program.parent.name}", rotary.cos[0, :, 0], rotary.sin[0, :, 0])
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
