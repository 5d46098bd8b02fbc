"""Run a golfc build and the challenge's reference script side by side: same GPU, data, seed and schedule.

Each program runs as a child process in its own working folder (they write logs/, final_model.pt and the
int8 artifact to their working directory), one after another, so every ms/step is measured alone on the GPU.
Programs:
- `reference`: the official train_gpt.py as it is (flash SDPA, fixed by its own lines);
- `reference_cudnn`: the same script with its SDPA switches set to cuDNN instead of flash (the two lines
  `enable_cudnn_sdp(False)` / `enable_flash_sdp(True)` swapped in a copy in the working folder; the copy is
  refused if those lines are not found);
- `golfc`: BUILD/train_gpt.py (the shipped, self-extracting file).

Printed side by side: train loss at every logged step, pre-quant and roundtrip val_bpb, artifact bytes,
ms/step, peak memory, and per tensor the largest weight difference between golfc's and the reference's
final_model.pt after the K steps (tensor names mapped: the reference's `blocks.*` / `skip_weights` are
golfc's `stack.blocks.*` / `stack.skip_weights`). `--json` writes the figures (bench/results/parity.json).

A record's own script can stand as the reference (issue 15's recipes against the records): `--reference-env` gives
it what it alone needs (e.g. `PYTHONPATH=bench/flash_attn_shim`, FlashAttention-3's stand-in), `--no-weights` skips
the tensor comparison (records name their weights their own way), and the 04-27 record's own log lines are read.

This is a benchmark tool, not a timed test. It needs CUDA (the reference refuses to run without it).

Usage (`merge` puts side by side the JSON files of programs run in separate calls on one warm machine):
  python bench/parity.py merge reference.json golfc.json --json both.json
  python bench/parity.py --build DIR --reference ../shared/reference/train_gpt.py \\
      --data DATA_PATH --tokenizer MODEL --vocab 1024 --steps 300 --work /tmp/parity --json bench/results/parity.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from program_console import run_console

PROGRAMS = ("reference", "reference_cudnn", "golfc")
CUDNN_SWITCHES = ("    enable_cudnn_sdp(False)\n    enable_flash_sdp(True)\n",
                  "    enable_cudnn_sdp(True)\n    enable_flash_sdp(False)\n")
TRAIN_LINE = re.compile(r"^step:(\d+)/(\d+) train_loss:([-\d.]+) train_time:([\d.]+)ms step_avg:([\d.]+)ms")
VAL_LINE = re.compile(r"^step:(\d+)/(\d+) val_loss:([\d.]+) val_bpb:([\d.]+) train_time:([\d.]+)ms step_avg:([\d.]+)ms")
ROUNDTRIP = re.compile(r"^final_\w+_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)")
ARTIFACT = re.compile(r"^Serialized model \S+: (\d+) bytes")  # the compressed artifact (the raw .pt line has no label)
PEAK = re.compile(r"^peak memory allocated: (\d+) MiB reserved: (\d+) MiB")
# the 04-27 record's script (PR #1855) logs in its own words: train and validation lines without "step:", train time
# in minutes with tokens per second, its hyperparameters as "  name: value", and the test-time-trained final score
RECORD_TRAIN_LINE = re.compile(r"^(\d+)/(\d+) train_loss: ([-\d.]+) train_time: ([\d.]+)m tok/s: ([\d.]+)")
RECORD_VAL_LINE = re.compile(r"^(\d+)/(\d+) val_loss: ([\d.]+) val_bpb: ([\d.]+)")
RECORD_BATCH = re.compile(r"^\s+train_batch_tokens: (\d+)$")
RECORD_FINAL = re.compile(r"^quantized_ttt\w* val_loss:([\d.]+) val_bpb:([\d.]+)")


class ParityError(RuntimeError):
    """Bad input to the tool or a program that did not finish: one line, exit 2."""


@dataclass
class RunFigures:
    """What one program's log says about its run."""

    ms_step: float | None = None
    prequant_bpb: float | None = None
    prequant_loss: float | None = None
    roundtrip_bpb: float | None = None
    roundtrip_loss: float | None = None
    artifact_bytes: int | None = None
    peak_mib: int | None = None
    wall_s: float | None = None
    train_loss: dict[int, float] = field(default_factory=dict)  # step -> train loss


def parse_run_log(text: str) -> RunFigures:
    """The figures of one run from its console output (the reference and golfc print the same lines). A record's
    script in the 04-27 record's words is read too: the pre-quant score is the last step's (before the EMA, as in the
    others), the final score the test-time-trained one, and ms/step comes from the last train line's tokens per
    second (an average over the run, like step_avg)."""
    run = RunFigures()
    batch_tokens, record_tok_s = None, None
    for line in text.splitlines():
        if m := TRAIN_LINE.match(line):
            run.train_loss[int(m.group(1))] = float(m.group(3))
        elif m := RECORD_TRAIN_LINE.match(line):
            run.train_loss[int(m.group(1))] = float(m.group(3))
            record_tok_s = float(m.group(5))
        elif m := RECORD_BATCH.match(line):
            batch_tokens = int(m.group(1))
        elif (m := RECORD_VAL_LINE.match(line)) and m.group(1) == m.group(2):  # the last step's, before the EMA
            run.prequant_loss, run.prequant_bpb = float(m.group(3)), float(m.group(4))
        elif m := RECORD_FINAL.match(line):
            run.roundtrip_loss, run.roundtrip_bpb = float(m.group(1)), float(m.group(2))
        elif m := VAL_LINE.match(line):
            if m.group(1) == m.group(2):  # the last step's validation: the pre-quant score
                run.prequant_loss, run.prequant_bpb = float(m.group(3)), float(m.group(4))
                run.ms_step = float(m.group(6))
        elif m := ROUNDTRIP.match(line):
            run.roundtrip_loss, run.roundtrip_bpb = float(m.group(1)), float(m.group(2))
        elif m := ARTIFACT.match(line):
            run.artifact_bytes = int(m.group(1))
        elif m := PEAK.match(line):
            run.peak_mib = int(m.group(1))
    if run.ms_step is None and batch_tokens and record_tok_s:
        run.ms_step = round(1000.0 * batch_tokens / record_tok_s, 2)
    return run


def cudnn_variant(reference_source: str) -> str:
    """The reference with cuDNN attention instead of flash: its two SDPA switches swapped."""
    flash, cudnn = CUDNN_SWITCHES
    if reference_source.count(flash) != 1:
        raise ParityError("reference script: expected its lines 'enable_cudnn_sdp(False)' then "
                          "'enable_flash_sdp(True)' once")
    return reference_source.replace(flash, cudnn)


def program_script(name: str, build: Path, reference: Path) -> str:
    if name == "golfc":
        return (build / "train_gpt.py").read_text(encoding="utf-8")
    source = reference.read_text(encoding="utf-8")
    return cudnn_variant(source) if name == "reference_cudnn" else source


def run_program(name: str, script: str, work: Path, env: dict[str, str], timeout_s: float) -> tuple[RunFigures, Path]:
    """Write `script` to work/name/train_gpt.py, run it there, keep its console output; the figures and folder.
    console.log is the output as printed; console_timed.log the same lines with the second each arrived
    (bench/program_console.py), kept also when the run is stopped at its timeout."""
    folder = work / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(script, encoding="utf-8")
    run = run_console([sys.executable, "train_gpt.py"], folder, {**os.environ, **env}, timeout_s)
    (folder / "console.log").write_text(run.output, encoding="utf-8")
    (folder / "console_timed.log").write_text(run.timed, encoding="utf-8")
    if run.timed_out:
        raise ParityError(f"{name}: did not finish within {timeout_s:.0f} s (console.log in {folder})")
    if run.returncode != 0:
        tail = run.output.strip().splitlines()[-1:] or [""]
        raise ParityError(f"{name}: exit {run.returncode}: {tail[0]} (console.log in {folder})")
    figures = parse_run_log(run.output)
    figures.wall_s = run.wall_s
    return figures, folder


def golfc_name(reference_name: str, golfc_names: set[str]) -> str | None:
    """The golfc state-dict name of a reference tensor (the blocks and skip weights live in golfc's stack)."""
    for candidate in (reference_name, f"stack.{reference_name}"):
        if candidate in golfc_names:
            return candidate
    return None


def weight_differences(reference_state: dict, golfc_state: dict) -> list[dict]:
    """Per reference tensor: the largest |golfc - reference| and that over max |reference|; largest first."""

    rows = []
    for name, ref in reference_state.items():
        other = golfc_name(name, set(golfc_state))
        if other is None:
            rows.append({"tensor": name, "golfc": None, "max_abs": None, "max_rel": None})
            continue
        a, b = ref.detach().float().cpu(), golfc_state[other].detach().float().cpu()
        if a.shape != b.shape:
            raise ParityError(f"{name}: reference shape {tuple(a.shape)}, golfc {other} {tuple(b.shape)}")
        diff = (a - b).abs().max().item() if a.numel() else 0.0
        scale = a.abs().max().item() if a.numel() else 0.0
        rows.append({"tensor": name, "golfc": other, "max_abs": diff, "max_rel": diff / scale if scale else diff})
    return sorted(rows, key=lambda r: -1.0 if r["max_abs"] is None else r["max_abs"], reverse=True)


def compare_final_weights(reference_folder: Path, golfc_folder: Path) -> list[dict]:
    import torch

    load = lambda folder: torch.load(folder / "final_model.pt", map_location="cpu", weights_only=True)  # noqa: E731
    return weight_differences(load(reference_folder), load(golfc_folder))


def run_environment(args: argparse.Namespace) -> dict[str, str]:
    env = {
        "DATA_PATH": str(Path(args.data).resolve()),
        "TOKENIZER_PATH": str(Path(args.tokenizer).resolve()),
        "VOCAB_SIZE": str(args.vocab),
        "ITERATIONS": str(args.steps),
        "MAX_WALLCLOCK_SECONDS": "0",
        "VAL_LOSS_EVERY": "0",
        "TRAIN_LOG_EVERY": str(args.log_every),
        "SEED": str(args.seed),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(named_values("--env", args.env))
    return env


def named_values(option: str, items: list[str]) -> dict[str, str]:
    """NAME=VALUE items of a repeatable option as a dict; one that is not NAME=VALUE is refused, naming it."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParityError(f"{option} {item!r}: expected NAME=VALUE")
        values[key] = value
    return values


def print_side_by_side(results: dict[str, RunFigures], diffs: list[dict] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = list(results)
    steps = sorted({s for r in results.values() for s in r.train_loss})
    losses = Table(title="train loss")
    losses.add_column("step", justify="right")
    for n in names:
        losses.add_column(n, justify="right")
    for s in steps:
        cells = (f"{results[n].train_loss[s]:.4f}" if s in results[n].train_loss else "—" for n in names)
        losses.add_row(str(s), *cells)
    console.print(losses)
    summary = Table(title="run")
    summary.add_column("figure")
    for n in names:
        summary.add_column(n, justify="right")
    rows = (("ms/step", "ms_step", "{:.2f}"), ("pre-quant val_bpb", "prequant_bpb", "{:.4f}"),
            ("roundtrip val_bpb", "roundtrip_bpb", "{:.4f}"), ("artifact bytes", "artifact_bytes", "{:,}"),
            ("peak MiB", "peak_mib", "{}"), ("wall s", "wall_s", "{}"))
    for label, key, fmt in rows:
        values = (getattr(results[n], key) for n in names)
        summary.add_row(label, *("—" if v is None else fmt.format(v) for v in values))
    console.print(summary)
    if diffs:
        table = Table(title="final weights, golfc - reference (largest first)")
        for column in ("tensor", "max |diff|", "max |diff| / max |ref|"):
            table.add_column(column)
        for row in diffs[:8]:
            if row["max_abs"] is None:
                table.add_row(row["tensor"], "not in golfc", "")
            else:
                table.add_row(row["tensor"], f"{row['max_abs']:.3e}", f"{row['max_rel']:.3e}")
        console.print(table)


def this_machine() -> dict:
    """The device and torch of the runs just made, for the JSON header."""
    import torch

    return {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__}


def summary_json(machine: dict, args: argparse.Namespace, results: dict[str, RunFigures],
                 diffs: list[dict] | None) -> dict:
    out: dict = {**machine, "steps": args.steps, "seed": args.seed, "env": args.env, "golfc_env": args.golfc_env}
    for name, run in results.items():
        figures = asdict(run)
        figures["train_loss"] = {str(k): v for k, v in sorted(run.train_loss.items())}
        out[name] = figures
    if "reference" in results and "golfc" in results:
        ref, ours = results["reference"], results["golfc"]
        scores = ("prequant_bpb", "roundtrip_bpb")
        delta = {k: round(getattr(ours, k) - getattr(ref, k), 6) for k in scores
                 if getattr(ours, k) is not None and getattr(ref, k) is not None}
        common = sorted(set(ref.train_loss) & set(ours.train_loss))
        delta["train_loss"] = {str(s): round(ours.train_loss[s] - ref.train_loss[s], 6) for s in common}
        out["golfc_minus_reference"] = delta
        for base in ("reference", "reference_cudnn"):
            if base in results and results[base].ms_step and ours.ms_step:
                out[f"speedup_vs_{base}"] = round(results[base].ms_step / ours.ms_step, 4)
    if diffs is not None:
        out["max_weight_diff"] = diffs[:10]
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, required=True, help="a golfc build folder (its train_gpt.py is run)")
    parser.add_argument("--reference", type=Path, required=True, help="the official train_gpt.py")
    parser.add_argument("--data", required=True, help="DATA_PATH: folder with fineweb_train_*.bin / fineweb_val_*.bin")
    parser.add_argument("--tokenizer", required=True, help="TOKENIZER_PATH: the SentencePiece .model")
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=300, help="ITERATIONS for every program (no wall-clock cap)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--log-every", type=int, default=50, help="TRAIN_LOG_EVERY (steps 1-10 always log)")
    parser.add_argument("--programs", default=",".join(PROGRAMS), help=f"comma-separated, from {', '.join(PROGRAMS)}")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every program (repeatable)")
    parser.add_argument("--golfc-env", action="append", default=[], help="NAME=VALUE for golfc only (repeatable)")
    parser.add_argument("--reference-env", action="append", default=[],
                        help="NAME=VALUE for the reference programs only (repeatable; e.g. "
                             "PYTHONPATH=bench/flash_attn_shim for a record's script that imports FlashAttention-3)")
    parser.add_argument("--no-weights", action="store_true",
                        help="skip the per-tensor comparison (a record's script names and shapes its weights "
                             "its own way)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/golfc_parity"), help="working folders, one per program")
    parser.add_argument("--timeout", type=float, default=560.0, help="seconds allowed to each program")
    parser.add_argument("--json", type=Path, help="write the figures here (e.g. bench/results/parity.json)")
    return parser.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> list[str]:
    names = [n.strip() for n in args.programs.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROGRAMS]
    if unknown or not names:
        raise ParityError(f"--programs {args.programs!r}: expected names from {', '.join(PROGRAMS)}")
    if "golfc" in names and not (args.build / "train_gpt.py").is_file():
        raise ParityError(f"--build {args.build}: no train_gpt.py there, expected a golfc build folder")
    if any(n.startswith("reference") for n in names) and not args.reference.is_file():
        raise ParityError(f"--reference {args.reference}: no such file, expected the official train_gpt.py")
    if args.steps < 1:
        raise ParityError(f"--steps {args.steps}: expected a positive number of steps")
    return names


def load_figures(path: Path) -> tuple[dict, dict[str, RunFigures]]:
    """One parity JSON: its header (device, torch, steps, seed, env) and its programs' figures."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ParityError(f"{path}: expected a JSON file written by parity.py --json ({type(exc).__name__})") from None
    programs = {}
    for name in PROGRAMS:
        if isinstance(data.get(name), dict):
            figures = dict(data[name])
            figures["train_loss"] = {int(k): v for k, v in figures.get("train_loss", {}).items()}
            programs[name] = RunFigures(**{k: v for k, v in figures.items() if k in RunFigures.__dataclass_fields__})
    if not programs:
        raise ParityError(f"{path}: no program figures in it, expected one of {', '.join(PROGRAMS)}")
    return data, programs


def merge_main(argv: list[str]) -> int:
    """`parity.py merge A.json B.json [--json OUT]`: the programs of runs made in separate calls on one warm machine
    (a pair that outruns one call) put side by side, refused unless they share device, steps and seed."""
    parser = argparse.ArgumentParser(prog="parity.py merge", description=merge_main.__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="JSON files written by parity.py --json")
    parser.add_argument("--json", type=Path, help="write the merged figures here")
    args = parser.parse_args(argv)
    try:
        headers, results = [], {}
        for path in args.files:
            header, programs = load_figures(path)
            for key in ("device", "steps", "seed"):
                if headers and header.get(key) != headers[0].get(key):
                    raise ParityError(f"{path}: {key} {header.get(key)!r}, but {args.files[0]} has "
                                      f"{headers[0].get(key)!r}: not the same machine and schedule")
            if dup := set(programs) & set(results):
                raise ParityError(f"{path}: {', '.join(sorted(dup))} is already in an earlier file")
            headers.append(header)
            results.update(programs)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_side_by_side(results, None)
    if args.json:
        first = headers[0]
        merged = argparse.Namespace(steps=first.get("steps"), seed=first.get("seed"), env=first.get("env", []),
                                    golfc_env=first.get("golfc_env", []))
        machine = {"device": first.get("device"), "torch": first.get("torch")}
        out = {**summary_json(machine, merged, results, None), "merged_from": [str(f) for f in args.files]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"parity: wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    args = parse_args(argv)
    try:
        names = check_inputs(args)
        env = run_environment(args)
        golfc_only = named_values("--golfc-env", args.golfc_env)
        reference_only = named_values("--reference-env", args.reference_env)
        results, folders = {}, {}
        for name in names:
            print(f"parity: running {name} ({args.steps} steps)", flush=True)
            script = program_script(name, args.build, args.reference)
            extra = golfc_only if name == "golfc" else reference_only
            results[name], folders[name] = run_program(name, script, args.work, {**env, **extra}, args.timeout)
        both = {"reference", "golfc"} <= set(folders) and not args.no_weights
        diffs = compare_final_weights(folders["reference"], folders["golfc"]) if both else None
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_side_by_side(results, diffs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = summary_json(this_machine(), args, results, diffs)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"parity: wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
