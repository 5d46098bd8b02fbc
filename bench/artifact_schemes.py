"""Train the golfc baseline once, then export the same weights with every artifact scheme and score each.

One training run (the baseline build, `--steps` steps, no wall-clock cap) leaves `final_model.pt`; for every scheme
(quantizer, stages, compressor: a plugin list) the tool builds that program and re-exports those weights through
the program's own phases (setup, validation, model, `export_artifact`, `roundtrip_eval`) in a child process:
`reexport` below. GPTQ calibrates there on training batches of the same data. Printed in one table and written
with `--json`: artifact bytes, code bytes, total against 16,000,000, roundtrip val_bpb and its gap to the
pre-quantization val_bpb of the training run, calibration and export seconds.

Usage (one GPU; bench/runs/2026-12-07_artifact_schemes.sh):
  python bench/artifact_schemes.py --data DATA_PATH --tokenizer MODEL --vocab 1024 --steps 300 --work /tmp/s \\
      --json bench/results/2026-12-07_artifact_schemes.json
  python bench/artifact_schemes.py reexport --program BUILD/train_gpt.src.py --weights final_model.pt  (internal)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET = 16_000_000
SCHEMES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {  # name -> (plugins, environment)
    "int8_zlib": ((), {}),
    "int6_zstd": (("int6", "zstd"), {}),
    "int6_brotli": (("int6", "brotli"), {"BYTE_SHUFFLE": "2"}),
    "mixed_int5_int6_zstd": (("mixed_quant", "zstd"), {}),
    "gptq_int6_zstd": (("int6", "gptq", "zstd"), {}),
    "gptq_lqer_int6_zstd": (("int6", "gptq", "lqer", "zstd"), {}),
    "gptq_sdclip_int6_brotli": (("int6", "gptq", "sdclip", "brotli"), {"BYTE_SHUFFLE": "2"}),
    # pergroup (tensors grouped by role): its defaults, without the row reorder (does the permutation pay at
    # this scale?), the record's reordered roles, and on the GPTQ+SDClip stack beside brotli's
    "int6_pergroup": (("int6", "pergroup"), {}),
    "int6_pergroup_no_reorder": (("int6", "pergroup"), {"PERGROUP_REORDER": "none"}),
    "int6_pergroup_record_rows": (("int6", "pergroup"), {"PERGROUP_REORDER_PATTERNS": "tok_emb,c_q,mlp.fc"}),
    "int6_pergroup_auto_rows": (("int6", "pergroup"), {"PERGROUP_REORDER": "auto", "PERGROUP_REORDER_PATTERNS": "."}),
    "gptq_sdclip_int6_pergroup": (("int6", "gptq", "sdclip", "pergroup"), {}),
}
ARTIFACT = re.compile(r"^Serialized model (\S+): (\d+) bytes", re.M)
CODE = re.compile(r"^Code size: (\d+) bytes", re.M)
ROUNDTRIP = re.compile(r"^final_\w+_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)", re.M)
PREQUANT = re.compile(r"^step:(\d+)/\1 val_loss:([\d.]+) val_bpb:([\d.]+)", re.M)
CALIBRATION = re.compile(r"^calibration:(\S+) batches:(\d+) seconds:([\d.]+)", re.M)
EXPORT = re.compile(r"^reexport: export_seconds:([\d.]+)", re.M)


class SchemesError(RuntimeError):
    """A program that did not finish, or bad input: one line, exit 2."""


def reexport(program: Path, weights: Path) -> None:
    """In the current folder: the program's set-up phases, the saved weights loaded, export and roundtrip eval."""
    import torch
    from paced_run import exec_program

    g = exec_program(program, "golfc_reexport")
    h = g["Hyperparameters"]()
    ctx = g["setup"](h)
    val_tokens = g["load_validation"](h, ctx)
    run = g["build_model"](h, ctx)
    run.base_model.load_state_dict(torch.load(weights, map_location=ctx.device), strict=True)
    g["sync_device"](ctx.device)
    t0 = time.perf_counter()
    artifact = g["export_artifact"](run.base_model, h, ctx, train_ms=0.0)
    g["log0"](f"reexport: export_seconds:{time.perf_counter() - t0:.2f}")
    g["roundtrip_eval"](run, val_tokens, artifact)
    g["teardown"](ctx)


def run_child(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SchemesError(f"{' '.join(args[:3])} in {cwd} exited {proc.returncode}: {tail[0]} (log: {log})")
    return proc.stdout


def first(pattern: re.Pattern[str], text: str, group: int = 1) -> str | None:
    found = pattern.findall(text)
    if not found:
        return None
    last = found[-1]
    return last[group - 1] if isinstance(last, tuple) else last


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reexport"]:
        p = argparse.ArgumentParser(prog="artifact_schemes.py reexport")
        p.add_argument("--program", type=Path, required=True)
        p.add_argument("--weights", type=Path, required=True)
        a = p.parse_args(argv[1:])
        reexport(a.program.resolve(), a.weights.resolve())
        return {}
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--json", type=Path)
    p.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated names of SCHEMES")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the training run and every export")
    p.add_argument("--export-env", action="append", default=[], help="KEY=VALUE for the exports only")
    a = p.parse_args(argv)
    names = [s for s in a.schemes.split(",") if s]
    unknown = [s for s in names if s not in SCHEMES]
    if unknown:
        raise SchemesError(f"--schemes {','.join(unknown)}: expected names among {', '.join(SCHEMES)}")
    from golfc.build import build_submission

    def pairs(items: list[str]) -> dict[str, str]:
        bad = [i for i in items if "=" not in i]
        if bad:
            raise SchemesError(f"--env {bad[0]}: expected KEY=VALUE")
        return dict(i.split("=", 1) for i in items)

    work = a.work.resolve()
    base_env = {**os.environ, "DATA_PATH": a.data, "TOKENIZER_PATH": a.tokenizer, "VOCAB_SIZE": str(a.vocab),
                "ITERATIONS": str(a.steps), "MAX_WALLCLOCK_SECONDS": "0", "VAL_LOSS_EVERY": "0", **pairs(a.env)}
    base_env = {k: (str(Path(v).resolve()) if k in ("DATA_PATH", "TOKENIZER_PATH") else v) for k, v in base_env.items()}
    build_submission((), {}, work / "build_base")
    t0 = time.perf_counter()
    train_log = run_child([sys.executable, str(work / "build_base" / "train_gpt.py")], work / "train",
                          {**base_env, "RUN_ID": "train"}, work / "train.log")
    prequant = first(PREQUANT, train_log, 3)
    results = {"steps": a.steps, "train_seconds": round(time.perf_counter() - t0, 1),
               "prequant_val_bpb": float(prequant) if prequant else None, "schemes": {}}
    weights = work / "train" / "final_model.pt"
    for name in names:
        plugins, env = SCHEMES[name]
        try:
            row = export_scheme(name, plugins, env, work, weights, {**base_env, **pairs(a.export_env)})
        except SchemesError as exc:  # one scheme that fails is a row saying so; the others keep theirs
            row = {"plugins": list(plugins), "env": env, "error": str(exc)}
        if row.get("roundtrip_val_bpb") is not None and results["prequant_val_bpb"] is not None:
            row["quant_gap_bpb"] = round(row["roundtrip_val_bpb"] - results["prequant_val_bpb"], 6)
        results["schemes"][name] = row
        print(f"{name}: {row}", flush=True)
        if a.json:  # rewritten after every scheme: a call cut short keeps what was measured
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


def export_scheme(name: str, plugins: tuple[str, ...], env: dict[str, str], work: Path, weights: Path,
                  base_env: dict[str, str]) -> dict:
    """Build one scheme's program and re-export the trained weights through it; its row of figures."""
    from golfc.build import build_submission

    build_submission(plugins, {}, work / f"build_{name}")
    program = work / f"build_{name}" / "train_gpt.py"
    log = run_child([sys.executable, __file__, "reexport", "--program", str(program), "--weights", str(weights)],
                    work / name, {**base_env, **env, "RUN_ID": name}, work / f"{name}.log")
    art, code, bpb = first(ARTIFACT, log, 2), first(CODE, log), first(ROUNDTRIP, log, 2)
    calib = CALIBRATION.findall(log)
    row = {"plugins": list(plugins), "env": env, "artifact_bytes": int(art) if art else None,
           "code_bytes": int(code) if code else None, "roundtrip_val_bpb": float(bpb) if bpb else None,
           "calibration_seconds": float(calib[-1][2]) if calib else None,
           "export_seconds": float(first(EXPORT, log) or "nan")}
    row["total_bytes"] = row["artifact_bytes"] + row["code_bytes"] if art and code else None
    return row


def table(results: dict) -> str:
    lines = [f"steps {results['steps']}, pre-quant val_bpb {results['prequant_val_bpb']}",
             f"| scheme | artifact bytes | total bytes | fits {BUDGET:,} | roundtrip val_bpb | gap | calib s "
             "| export s |",
             "|---|---:|---:|:-:|---:|---:|---:|---:|"]
    for name, r in results["schemes"].items():
        if "error" in r or r["total_bytes"] is None or r["roundtrip_val_bpb"] is None:
            lines.append(f"| {name} | failed: {r.get('error', 'no artifact or roundtrip line')} |")
            continue
        fits = "yes" if r["total_bytes"] is not None and r["total_bytes"] <= BUDGET else "no"
        lines.append(f"| {name} | {r['artifact_bytes']:,} | {r['total_bytes']:,} | {fits} | "
                     f"{r['roundtrip_val_bpb']:.4f} | {r.get('quant_gap_bpb', float('nan')):+.4f} | "
                     f"{r['calibration_seconds'] or 0:.2f} | "
                     f"{r['export_seconds']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        main()
    except SchemesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
