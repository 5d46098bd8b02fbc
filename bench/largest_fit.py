"""The largest baseline-shaped model whose artifact fits the 16,000,000-byte budget under a measured scheme.

Input: the JSON of bench/artifact_schemes.py (the golfc baseline trained once, its weights exported through every
scheme). The best scheme is the one with the fewest artifact bytes per parameter among the schemes whose
roundtrip val_bpb is within --quality of the best roundtrip (compression that does not cost score). Its bytes per
parameter, measured on the baseline, price every candidate shape (NUM_LAYERS, MLP_MULT at the baseline's width,
heads and vocabulary; parameters counted from the built model); the largest candidate whose code + estimated
artifact stays under the budget less --margin wins (among near-equals, the shallowest).

Printed: the candidates that fit, the choice, and the design_card.py program that trains it:
`<scheme plugins>,fit_budget+NUM_LAYERS=L+MLP_MULT=M` -- fit_budget is in the stack because bytes per parameter
move with training length: an estimate that runs over becomes a logged shrink, not a failed run.

Usage (bench/runs/2026-12-07_largest_fit.sh runs it on the device after the schemes):
  python bench/largest_fit.py SCHEMES.json [--quality 0.003] [--margin 0.03] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET = 16_000_000
LAYERS = range(9, 25)  # candidates: depth, and MLP width as a multiple of MODEL_DIM
MLP_MULTS = (2, 3, 4, 5, 6)


class FitError(RuntimeError):
    """Bad input: one line, exit 2."""


def model_parameters(num_layers: int, mlp_mult: int, vocab: int) -> dict[str, int]:
    """The baseline model's parameters by name at this depth and MLP width (built on the meta device)."""
    import torch

    from golfc.testing import environment, load_program

    env = {"NUM_LAYERS": str(num_layers), "MLP_MULT": str(mlp_mult), "VOCAB_SIZE": str(vocab)}
    ns = load_program((), env=env)
    with environment(env), torch.device("meta"):
        model = ns["GPT"](ns["Hyperparameters"]())
    return {name: p.numel() for name, p in model.named_parameters()}


def parameter_counter(vocab: int) -> Callable[[int, int], int]:
    """params(L, M) for the baseline's shape, read off one built model (9 layers, MLP 2x): the embedding and
    other shared tensors, one U-net skip weight per encoder/decoder pair (L // 2 of them), and per block its
    attention and control tensors plus the MLP, which grows with MLP_MULT. Checked against a second build."""
    base = model_parameters(9, 2, vocab)
    block = {n.split("blocks.0.", 1)[1]: c for n, c in base.items() if ".blocks.0." in f".{n}"}
    mlp_per_mult = sum(c for n, c in block.items() if n.startswith("mlp.")) // 2
    block_fixed = sum(c for n, c in block.items() if not n.startswith("mlp."))
    skip = next(c for n, c in base.items() if n.endswith("skip_weights")) // (9 // 2)
    shared = sum(c for n, c in base.items() if "blocks." not in n and not n.endswith("skip_weights"))

    def count(num_layers: int, mlp_mult: int) -> int:
        return shared + skip * (num_layers // 2) + num_layers * (block_fixed + mlp_mult * mlp_per_mult)

    check = sum(model_parameters(12, 3, vocab).values())
    if count(12, 3) != check:
        raise FitError(f"parameter formula gives {count(12, 3):,} at 12 layers, MLP 3x; the model has {check:,}")
    return count


def best_scheme(schemes: dict[str, dict], quality: float) -> tuple[str, dict]:
    """The scheme with the fewest artifact bytes among those within `quality` bpb of the best roundtrip."""
    scored = {n: r for n, r in schemes.items() if r.get("artifact_bytes") and r.get("roundtrip_val_bpb") is not None}
    if not scored:
        raise FitError("the schemes JSON has no scheme with artifact_bytes and roundtrip_val_bpb")
    best_bpb = min(r["roundtrip_val_bpb"] for r in scored.values())
    near = {n: r for n, r in scored.items() if r["roundtrip_val_bpb"] <= best_bpb + quality}
    name = min(near, key=lambda n: near[n]["artifact_bytes"])
    return name, near[name]


def choose(results: dict, quality: float, margin: float, vocab: int) -> dict:
    """The fitting candidates and the largest of them, priced by the best scheme's bytes per parameter."""
    name, scheme = best_scheme(results["schemes"], quality)
    params_of = parameter_counter(vocab)
    base_params = params_of(9, 2)
    per_param = scheme["artifact_bytes"] / base_params
    limit = BUDGET * (1 - margin)
    fits = []
    for layers in LAYERS:
        for mult in MLP_MULTS:
            params = params_of(layers, mult)
            estimate = scheme["code_bytes"] + 1024 + per_param * params  # +1 KiB: fit_budget's own code
            if estimate <= limit:
                fits.append({"NUM_LAYERS": layers, "MLP_MULT": mult, "params": params,
                             "estimate_bytes": round(estimate)})
    if not fits:
        raise FitError(f"no candidate fits {limit:,.0f} bytes at {per_param:.4f} bytes per parameter ({name})")
    # the most parameters; among candidates within 5% of that, the fewest layers (a wider MLP costs less time
    # per parameter than another block, which matters at equal wall clock)
    most = max(c["params"] for c in fits)
    chosen = min((c for c in fits if c["params"] >= 0.95 * most), key=lambda c: (c["NUM_LAYERS"], -c["params"]))
    plugins = ",".join([*scheme["plugins"], "fit_budget"])
    settings = "".join(f"+{k}={v}" for k, v in scheme.get("env", {}).items())
    return {"scheme": name, "scheme_plugins": scheme["plugins"], "bytes_per_param": per_param,
            "baseline_params": base_params, "limit_bytes": limit, "fits": fits, "chosen": chosen,
            "program": f"{plugins}{settings}+NUM_LAYERS={chosen['NUM_LAYERS']}+MLP_MULT={chosen['MLP_MULT']}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("schemes_json", type=Path)
    ap.add_argument("--quality", type=float, default=0.003, help="bpb above the best roundtrip still counted best")
    ap.add_argument("--margin", type=float, default=0.03, help="fraction of the budget kept free for the estimate")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    try:
        if not a.schemes_json.is_file():
            raise FitError(f"{a.schemes_json}: expected the JSON written by bench/artifact_schemes.py --json")
        if not 0 <= a.margin < 1:
            raise FitError(f"--margin {a.margin}: expected a fraction in [0, 1)")
        result = choose(json.loads(a.schemes_json.read_text()), a.quality, a.margin, a.vocab)
    except (FitError, json.JSONDecodeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in result["fits"]:
        print(f"fits: NUM_LAYERS={c['NUM_LAYERS']} MLP_MULT={c['MLP_MULT']} params {c['params']:,} "
              f"estimate {c['estimate_bytes']:,} B")
    print(f"scheme {result['scheme']} at {result['bytes_per_param']:.4f} B/param; chosen {result['chosen']}")
    print(f"program: {result['program']}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
