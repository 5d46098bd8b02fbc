"""Run a built training program with its clock slowed down, to compare schedules at another GPU's pace.

Under MAX_WALLCLOCK_SECONDS the baseline's warmdown is a function of elapsed time and of the measured
step time (lr_mul = remaining_ms / (WARMDOWN_ITERS * step_ms)), and the cap decides how many steps run.
A faster engine therefore trains a different schedule for more steps: a fair test of "same math" has to
give it the same clock as the slower run it is compared with. This harness executes the program with
`time.perf_counter` dilated by PACE (each real second reads as PACE seconds) inside the program only, so
with PACE = reference_ms_per_step / golfc_ms_per_step the cap, the step_avg and the warmdown all see the
reference's pace while the GPU does exactly what it always does. Logged train_time, step_avg and
eval_time are virtual (dilated) times; the harness says so in its first output line.

This is a benchmark tool, not part of any submission. It changes nothing but the clock the program reads.

Usage: python bench/paced_run.py --pace 1.30 DIR/train_gpt.src.py   (environment as for the program)
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path


def dilated_time_module(pace: float) -> types.SimpleNamespace:
    """A stand-in for the `time` module whose perf_counter runs `pace` times faster than the real one."""
    start = time.perf_counter()

    def perf_counter() -> float:
        return start + pace * (time.perf_counter() - start)

    shim = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    shim.perf_counter = perf_counter
    return shim


def exec_program(path: Path, run_name: str) -> dict:
    """Define every section of a runnable golfc program in a fresh namespace without starting main()."""
    program = {"__name__": run_name, "__file__": str(path), "__builtins__": __builtins__}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), program)
    return program


def run_main(program: dict) -> None:
    """Run the program's main() as its own entry point does: bad run input is one line on stderr, exit 2."""
    try:
        program["main"]()
    except (program["RunInputError"], FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=float, required=True, help="virtual seconds per real second (> 0)")
    parser.add_argument("program", type=Path, help="a runnable golfc program, e.g. DIR/train_gpt.src.py")
    args = parser.parse_args()
    if not args.pace > 0:
        parser.error(f"--pace {args.pace}: expected a positive number")
    if not args.program.is_file():
        parser.error(f"{args.program}: no such file")
    print(f"paced_run: perf_counter dilated x{args.pace:g} inside {args.program}; logged times are virtual", flush=True)
    program = exec_program(args.program, "golfc_paced")
    program["time"] = dilated_time_module(args.pace)  # every section reads the clock through this global
    run_main(program)


if __name__ == "__main__":
    main()
