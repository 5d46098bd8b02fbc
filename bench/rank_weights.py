"""Do the ranks of a multi-GPU run end with the same weights? Keep each rank's, then compare them.

Usage (on the device):
  torchrun --standalone --nproc_per_node N bench/rank_weights.py run PROGRAM.src.py --keep DIR
      runs the program's main() unchanged (environment as for the program) and, when it exports, also
      saves every rank's final state dict as DIR/rank<r>.pt;
  python bench/rank_weights.py compare DIR
      prints, per tensor that differs from rank 0's, the largest absolute difference; exit 1 if any does.

Ranks start from the same weights and apply the same averaged gradients, so they stay equal only if every
rank also sets the same learning rate: under a wall-clock cap the warmdown reads the clock, which is why the
program agrees on one clock across ranks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paced_run import exec_program, run_main


def run(program: Path, keep: Path) -> None:
    g = exec_program(program, "golfc_rank_weights")
    export = g["export_artifact"]

    def keep_each_ranks_weights(model, h, ctx, **kw):
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, keep / f"rank{ctx.rank}.pt")
        return export(model, h, ctx, **kw)

    g["export_artifact"] = keep_each_ranks_weights  # main() looks it up in the program's globals
    run_main(g)


def compare(keep: Path) -> list[tuple[str, int, float]]:
    """(tensor, rank, max |difference| against rank 0) for every tensor of every rank that differs."""
    files = sorted(keep.glob("rank*.pt"), key=lambda p: int(p.stem[4:]))
    if len(files) < 2:
        raise SystemExit(f"error: {keep}: expected rank<r>.pt files of two or more ranks, found {len(files)}")
    first = torch.load(files[0])
    differing = []
    for path in files[1:]:
        other = torch.load(path)
        if other.keys() != first.keys():
            raise SystemExit(f"error: {path}: its tensors are not rank 0's")
        for name, t in first.items():
            if not torch.equal(t, other[name]):
                differing.append((name, int(path.stem[4:]), (t.float() - other[name].float()).abs().max().item()))
    return differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument("program", type=Path)
    p_run.add_argument("--keep", type=Path, required=True)
    p_cmp = sub.add_parser("compare")
    p_cmp.add_argument("keep", type=Path)
    args = parser.parse_args()
    if args.mode == "run":
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.program, args.keep)
        return
    differing = compare(args.keep)
    for name, rank, diff in differing:
        print(f"rank {rank} differs from rank 0 in {name}: max |diff| {diff:.3e}")
    count = len(list(args.keep.glob("rank*.pt")))
    print(f"{count} ranks: " + ("identical weights" if not differing else f"{len(differing)} tensors differ"))
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
