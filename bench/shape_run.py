"""Run a built program with another number of micro-batches per rank, to give fewer GPUs another shape's work.

The program always uses grad_accum_steps = 8 // WORLD_SIZE. On eight GPUs each rank runs one 64 x 1024
micro-batch per step; this harness lets four (or two) GPUs run exactly that per-rank work inside the real
training loop (loader, logging, validation, the clock), e.g. to compare the loop with bench/dist_step.py
at the same shape. Set TRAIN_BATCH_TOKENS to WORLD_SIZE x ACCUM x 65,536 to keep the 64-row micro-batch.

Usage (on the device):
  TRAIN_BATCH_TOKENS=262144 torchrun --standalone --nproc_per_node 4 bench/shape_run.py --accum 1 \\
      [--gc-freeze] DIR/train_gpt.src.py

--gc-freeze: when the timed loop's loader is created (after the compile warmup), collect garbage once, move
every object to the permanent generation and turn the cyclic collector off, so that no rank pauses for it
while training. This is a benchmark tool, not part of any submission.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paced_run import exec_program, run_main


def force_accum(program: dict, accum: int) -> None:
    """Make the program's init_distributed return a context with `accum` micro-batches per step."""
    init = program["init_distributed"]

    def init_with_accum(h):
        ctx = init(h)
        ctx.grad_accum_steps = accum
        return ctx

    program["init_distributed"] = init_with_accum


def freeze_gc_at_each_loader(program: dict) -> None:
    """Collect and freeze the heap, and disable the collector, whenever the program creates its train loader."""
    loader_class = program["TrainLoader"]

    def loader_after_gc_freeze(h, ctx):
        gc.collect()
        gc.freeze()
        gc.disable()
        return loader_class(h, ctx)

    program["TrainLoader"] = loader_after_gc_freeze


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accum", type=int, required=True, help="micro-batches per step and rank (>= 1)")
    parser.add_argument("--gc-freeze", action="store_true", help="no cyclic garbage collection while training")
    parser.add_argument("program", type=Path, help="a runnable golfc program, e.g. DIR/train_gpt.src.py")
    args = parser.parse_args()
    if args.accum < 1:
        parser.error(f"--accum {args.accum}: expected a positive integer")
    program = exec_program(args.program, "golfc_shape_run")
    force_accum(program, args.accum)
    if args.gc_freeze:
        freeze_gc_at_each_loader(program)
    run_main(program)


if __name__ == "__main__":
    main()
