"""The verifier's probes on a GPU: probe mode through the compiled model and bf16 autocast (causality alone) and
through the eager model (with rows), each bit-identical before the cut; SLOT's batch invariance on the GPU's
kernels within a tolerance. CPU CI skips these; `bash bench/device_gpu_tests.sh` runs them."""

from __future__ import annotations

import pytest
import torch

from golfc.build import build_submission
from golfc.testing import TINY_RUN_ENV
from golfc.verify.causality import run_checks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

ENV = {**TINY_RUN_ENV, "DEVICE": "cuda", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "TRAIN_SEQ_LEN": "256", "TRAIN_BATCH_TOKENS": "16384", "VAL_BATCH_SIZE": "8192", "EVAL_STRIDE": "64",
       "EVAL_BATCH_SEQS": "4", "SLOT_STEPS": "2"}


def checks(tmp_path, dataset, plugins, names, tolerance=0.0):
    out = tmp_path / ("-".join(plugins) or "baseline")
    build_submission(plugins, {}, out)
    return {r.name: r for r in run_checks(out / "train_gpt.py", names, workdir=tmp_path / "work",
                                          env={**ENV, **dataset.env()}, tolerance=tolerance)}


def test_the_compiled_baseline_is_causal_to_the_bit_on_the_gpu(tmp_path, tiny_dataset):
    result = checks(tmp_path, tiny_dataset, (), ["causality"])["causality"]
    assert result.verdict == "PASS", result.evidence


def test_slot_on_the_gpu_passes_causality_and_both_c2_checks(tmp_path, tiny_dataset):
    results = checks(tmp_path, tiny_dataset, ("sliding_window", "slot"), ["causality", "normalization", "target"])
    assert {n: r.verdict for n, r in results.items()} == {"causality": "PASS", "normalization": "PASS",
                                                          "target": "PASS"}, [r.evidence for r in results.values()]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="the rank variant needs two GPUs")
def test_slot_scores_do_not_depend_on_batch_or_ranks_beyond_kernel_rounding(tmp_path, tiny_dataset):
    result = checks(tmp_path, tiny_dataset, ("sliding_window", "slot"), ["batch"], tolerance=1e-3)["batch"]
    assert result.verdict == "PASS", result.evidence
