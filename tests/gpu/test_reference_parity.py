"""golfc's baseline build trains like the official script on a GPU.

Both need CUDA and the reference script (../shared/reference/train_gpt.py, or GOLFC_REFERENCE where ../shared
does not travel); they skip otherwise.
- The RoPE tables: golfc's equal, bit for bit, the tables the reference's compiled graph builds on this device
  (bench/rope_tables.py). golfc's tables before 2026-12-04 (positions and products rounded to bf16) differ by up
  to 2.0 and fail this; with them golfc trained 0.04 bpb worse at 300 steps (bench/RESULTS.md).
- The whole programs, run as they are (bench/parity.py) at a reduced shape with the baseline's head_dim (64),
  GQA ratio and sequence length (1024), flash SDPA on both, seed 1337, 30 steps of a 120-step warmdown (the
  learning-rate multiplier of the 300-step schedule's start): every final tensor and every step's train loss
  within the stated tolerances. This guards the rest of the pipeline (loader, schedule, optimizers, warmup
  reset, export). It cannot see the RoPE defect: a 2-layer model does not learn position-dependent attention
  in 30 steps, and golfc before the fix agreed here too (train loss within 2e-4 at every step, weights within
  0.051 of each tensor's largest value, on an H200: bench/logs/2026-12-04/reduced30_before.txt). The
  tolerances are twice that weight spread and five times that loss spread.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from golfc.build import build_submission
from golfc.testing import load_program

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("GOLFC_REFERENCE", REPO.parent / "shared" / "reference" / "train_gpt.py"))
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine"),
    pytest.mark.skipif(not REFERENCE.is_file(), reason=f"needs the reference script: {REFERENCE} (or GOLFC_REFERENCE)"),
]
REDUCED = {
    "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "1024",
    "TRAIN_BATCH_TOKENS": "65536", "VAL_BATCH_SIZE": "65536", "ITERATIONS": "30", "WARMDOWN_ITERS": "120",
    "WARMUP_STEPS": "2", "MAX_WALLCLOCK_SECONDS": "0", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1", "SEED": "1337",
}
MAX_RELATIVE_WEIGHT_DIFF = 0.1  # largest |golfc - reference| of a tensor over its largest |value|
MAX_TRAIN_LOSS_DIFF = 1e-3


def load_bench(name: str):
    """A bench/ tool as a module, registered in sys.modules (its dataclasses resolve their module through it)."""
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rope_tables_equal_the_tables_the_reference_trains_with():
    rope = load_bench("rope_tables")
    reference = rope.import_reference(REFERENCE)
    device = torch.device("cuda")
    cos, sin = rope.reference_tables(reference, 64, 10000.0, 1024, device)
    ns = load_program()
    rotary = ns["Rotary"](64, 10000.0, 1024, ns["Hyperparameters"].rope_bf16_tables).to(device)
    assert torch.equal(rotary.cos[0, :, 0], cos)
    assert torch.equal(rotary.sin[0, :, 0], sin)


def test_golfc_trains_like_the_reference_for_30_steps(tmp_path, tiny_dataset):
    parity = load_bench("parity")
    build = tmp_path / "build"
    build_submission(out_dir=build)
    env = {**tiny_dataset.env(), **REDUCED, "PYTHONUNBUFFERED": "1"}
    reference, reference_folder = parity.run_program(
        "reference", REFERENCE.read_text(encoding="utf-8"), tmp_path, env, timeout_s=400)
    golfc, golfc_folder = parity.run_program(
        "golfc", (build / "train_gpt.py").read_text(encoding="utf-8"), tmp_path, {**env, "SDPA_BACKEND": "flash"}, 400)
    diffs = parity.compare_final_weights(reference_folder, golfc_folder)
    report = "\n".join(f"{d['tensor']}: max abs {d['max_abs']}, rel {d['max_rel']}" for d in diffs)
    losses = " ".join(f"{s}:{reference.train_loss[s]}/{golfc.train_loss.get(s)}" for s in sorted(reference.train_loss))
    print(report, losses, sep="\n")
    assert all(d["golfc"] is not None for d in diffs), report
    assert sorted(golfc.train_loss) == sorted(reference.train_loss) == list(range(1, 31)), losses
    assert max(abs(golfc.train_loss[s] - v) for s, v in reference.train_loss.items()) <= MAX_TRAIN_LOSS_DIFF, losses
    assert max(d["max_rel"] for d in diffs) <= MAX_RELATIVE_WEIGHT_DIFF, report
