"""The design card's plugins on one GPU: the golfc baseline against each plugin alone and the two stacks, at equal
steps, then `window` against full attention at long sequence lengths.

Each program is built here (golfc.build) and run as a child process in its own folder, one after another, so that
every ms/step is measured alone on the GPU. A program that fails or runs past --timeout gets a row saying so; the
others keep theirs, and the JSON is rewritten after every program (a killed call still leaves what was measured).

Printed: one table (ms/step, pre-quant val_bpb at the last step, the roundtrip val_bpb of the scored artifact --
the final, adapted score for ttt and slot --, its evaluation seconds, artifact bytes, peak MiB), then one for the
sequence lengths (ms/step, window and full attention).

Usage (on the device, after `source bench/runs/parity_env.sh`):
  python3 bench/design_card.py --data DATA_PATH --tokenizer MODEL --vocab 1024 --steps 120 \\
      --work /tmp/design_card --json $OUT/design_card.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from program_console import run_console

STACK5 = ("window", "xsa", "bigram_hash", "sliding_window", "ttt")
# name -> (plugins, environment). Evaluation knobs keep the adapters' cost small on the stand-in validation set.
EVAL_ENV = {"EVAL_STRIDE": "256", "EVAL_BATCH_SEQS": "64", "TTT_EPOCHS": "1", "SLOT_STEPS": "4"}
PROGRAMS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "baseline": ((), {}),
    "window": (("window",), {}),
    "xsa": (("xsa",), {}),
    "bigram_hash": (("bigram_hash",), {}),
    "sliding_window": (("sliding_window",), {}),
    "ttt": (("ttt",), {}),
    # SLOT adapts on each window's context: plain windows have none, so it runs on sliding windows (golfc refuses
    # slot without them); the program names stay the design card's
    "slot": (("sliding_window", "slot"), {}),
    "slot,window": (("sliding_window", "slot", "window"), {}),
    ",".join(STACK5): (STACK5, {}),
    "ttt_lora": (("ttt",), {"TTT_MODE": "lora"}),  # not in the default list: an eager per-document evaluation
}
DEFAULT_PROGRAMS = tuple(name for name in PROGRAMS if name != "ttt_lora")
PLUGINS_DIR = Path(__file__).resolve().parent.parent / "plugins"

VAL_LINE = re.compile(r"^step:(\d+)/(\d+) val_loss:([\d.]+) val_bpb:([\d.]+) train_time:([\d.]+)ms step_avg:([\d.]+)ms")
TRAIN_LINE = re.compile(r"^step:(\d+)/(\d+) train_loss:([-\d.]+) train_time:([\d.]+)ms step_avg:([\d.]+)ms")
ROUNDTRIP = re.compile(r"^final_\w+_roundtrip val_loss:([\d.]+) val_bpb:([\d.]+) eval_time:(\d+)ms")
ROUNDTRIP_EXACT = re.compile(r"^final_\w+_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)")
ARTIFACT = re.compile(r"^Serialized model \S+: (\d+) bytes")
PEAK = re.compile(r"^peak memory allocated: (\d+) MiB")


class BenchError(RuntimeError):
    """Bad input to the tool: one line, exit 2."""


@dataclass
class Row:
    """One program's figures (None: not printed by the run)."""

    name: str
    plugins: list[str] = field(default_factory=list)
    status: str = "not run"  # ok, failed (exit N), timeout, build failed: ...
    steps: int | None = None
    ms_step: float | None = None
    prequant_bpb: float | None = None
    roundtrip_bpb: float | None = None
    eval_s: float | None = None
    artifact_bytes: int | None = None
    peak_mib: int | None = None
    wall_s: float | None = None


def parse_log(text: str, row: Row) -> Row:
    """Fill row from a golfc program's console output."""
    for line in text.splitlines():
        if m := VAL_LINE.match(line):  # the last evaluation printed is the final (pre-quant) one, at the
            # last step or where a wall-clock cap stopped training (step:N/ITERATIONS with N < ITERATIONS)
            row.steps, row.prequant_bpb, row.ms_step = int(m.group(1)), float(m.group(4)), float(m.group(6))
        elif m := TRAIN_LINE.match(line):
            row.steps, row.ms_step = int(m.group(1)), float(m.group(5))
        elif m := ROUNDTRIP.match(line):
            row.eval_s = int(m.group(3)) / 1000.0
        elif m := ROUNDTRIP_EXACT.match(line):
            row.roundtrip_bpb = float(m.group(2))
        elif m := ARTIFACT.match(line):
            row.artifact_bytes = int(m.group(1))
        elif m := PEAK.match(line):
            row.peak_mib = int(m.group(1))
    return row


def run_program(row: Row, plugins: tuple[str, ...], env: dict[str, str], work: Path, timeout: float) -> Row:
    """Build and run one program; never raises for the program's own failure (the row says what happened)."""
    from golfc.build import build_submission

    folder = work / re.sub(r"[^\w.-]", "_", row.name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        build = build_submission(plugins, {}, folder / "build")
    except Exception as exc:  # a recipe that does not build is a row, not the end of the bench
        row.status = f"build failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return row
    run = run_console([sys.executable, "train_gpt.py"], build.out_dir, {**os.environ, **env}, timeout)
    row.wall_s = run.wall_s
    (folder / "console.txt").write_text(run.output, encoding="utf-8")
    (folder / "console_timed.txt").write_text(run.timed, encoding="utf-8")  # each line after the second it arrived
    parse_log(run.output, row)
    row.status = "timeout" if run.timed_out else ("ok" if run.returncode == 0 else f"failed (exit {run.returncode})")
    return row


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    lines = [f"{'program':<48} {'status':<12} {'ms/step':>8} {'pre-quant':>9} {'roundtrip':>9} {'eval s':>7} "
             f"{'bytes':>10} {'peak MiB':>8}"]
    for r in rows:
        lines.append(f"{r.name:<48} {r.status[:12]:<12} {fmt(r.ms_step, '.2f'):>8} {fmt(r.prequant_bpb, '.4f'):>9} "
                     f"{fmt(r.roundtrip_bpb, '.4f'):>9} {fmt(r.eval_s, '.1f'):>7} {fmt(r.artifact_bytes, 'd'):>10} "
                     f"{fmt(r.peak_mib, 'd'):>8}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--steps", type=int, default=120, help="equal steps per program (no wall-clock cap)")
    ap.add_argument("--cap", type=float, default=0.0, help="a training wall-clock cap in seconds instead of equal "
                    "steps (MAX_WALLCLOCK_SECONDS; --steps is then only the upper bound)")
    ap.add_argument("--programs", default=" ".join(DEFAULT_PROGRAMS),
                    help=f"space-separated names of: {' | '.join(PROGRAMS)}; any other name is a comma-separated "
                    "plugin list built as it is (e.g. `leaky_relu2` or `ema,swa`: each plugin's cost), optionally "
                    "with +NAME=VALUE settings for that program alone (`int6,zstd+NUM_LAYERS=12+MLP_MULT=3`; "
                    "`baseline+MLP_MULT=3`)")
    ap.add_argument("--seq-lens", default="2048,6144,8192", help="window vs full attention at these TRAIN_SEQ_LEN "
                    "(empty: skip)")
    ap.add_argument("--seq-steps", type=int, default=15)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for every program (repeatable)")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds per program")
    ap.add_argument("--work", default="/tmp/design_card")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    args.programs = args.programs.split()
    unknown = [p for p in args.programs if not program_spec(p, known_plugins())]
    if unknown:
        raise BenchError(f"--programs {' '.join(unknown)}: expected names among {', '.join(PROGRAMS)} or "
                         "comma-separated plugin names")
    if args.cap < 0:
        raise BenchError(f"--cap {args.cap}: expected seconds >= 0 (0: equal steps)")
    if args.steps < 1 or args.seq_steps < 1:
        raise BenchError(f"--steps {args.steps} / --seq-steps {args.seq_steps}: expected >= 1")
    try:
        args.seq_lens = [int(s) for s in args.seq_lens.split(",") if s.strip()]
        args.env = dict(item.split("=", 1) for item in args.env)
    except ValueError as exc:
        raise BenchError(f"--seq-lens {args.seq_lens!r} or --env: expected integers and NAME=VALUE ({exc})") from None
    return args


def known_plugins() -> set[str]:
    return {d.name for d in PLUGINS_DIR.iterdir() if (d / "__init__.py").is_file()}


def program_spec(name: str, known: set[str]) -> tuple[tuple[str, ...], dict[str, str]] | None:
    """A --programs entry as (plugins, environment): a PROGRAMS name or a plugin list, then +NAME=VALUE settings;
    None when a plugin is unknown or a setting is not NAME=VALUE."""
    head, *settings = name.split("+")
    if any("=" not in s or not s.split("=", 1)[0].isupper() for s in settings):
        return None
    if head in PROGRAMS:
        plugins, env = PROGRAMS[head]
    elif set(head.split(",")) <= known:
        plugins, env = tuple(head.split(",")), {}
    else:
        return None
    return plugins, {**env, **dict(s.split("=", 1) for s in settings)}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    work = Path(args.work)
    base_env = {"DATA_PATH": args.data, "TOKENIZER_PATH": args.tokenizer, "VOCAB_SIZE": str(args.vocab),
                "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "0", "MAX_WALLCLOCK_SECONDS": f"{args.cap:g}",
                "WARMUP_STEPS": "3", **EVAL_ENV, **args.env}
    known = known_plugins()
    rows: list[Row] = []
    seq_rows: list[Row] = []

    def save():
        if args.json:
            doc = {"steps": args.steps, "cap_s": args.cap, "env": base_env, "programs": [asdict(r) for r in rows],
                   "seq_len": [asdict(r) for r in seq_rows]}
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    for name in args.programs:
        plugins, env = program_spec(name, known)
        row = Row(name=name, plugins=list(plugins))
        rows.append(row)
        run_program(row, plugins, {**base_env, **env, "ITERATIONS": str(args.steps), "RUN_ID": "bench"}, work,
                    args.timeout)
        print(f"{name}: {row.status} ms/step {fmt(row.ms_step, '.2f')} roundtrip {fmt(row.roundtrip_bpb, '.4f')}",
              flush=True)
        save()
    # window against full attention at long sequences: training speed only (steps, no evaluation worth timing)
    for seq_len in args.seq_lens:
        for name, plugins in (("full", ()), ("window", ("window",))):
            row = Row(name=f"{name}@{seq_len}", plugins=list(plugins))
            seq_rows.append(row)
            per_step = 8 * seq_len * max(1, round(524_288 / (8 * seq_len)))  # about the baseline's tokens per step
            env = {**base_env, "TRAIN_SEQ_LEN": str(seq_len), "TRAIN_BATCH_TOKENS": str(per_step),
                   "ITERATIONS": str(args.seq_steps), "RUN_ID": "seq"}
            run_program(row, plugins, env, work / "seq", args.timeout)
            print(f"{row.name}: {row.status} ms/step {fmt(row.ms_step, '.2f')}", flush=True)
            save()
    print(table(rows))
    if seq_rows:
        print(table(seq_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
