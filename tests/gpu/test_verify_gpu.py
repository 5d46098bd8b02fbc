"""``golfc verify`` on a GPU: a compiled CUDA run of the baseline under torchrun, in the network namespace when
the machine allows one (CUDA and torchrun's rendezvous must work there), with the ledgers and golfc's clocks.
The CPU end-to-end test is tests/verify/test_verify_end_to_end.py."""

from __future__ import annotations

import pytest
import torch

from golfc.build import build_submission
from golfc.verify.command import VerifyOptions, verify_submission
from golfc.verify.runs import Limits, network_isolation

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

SMALL = {"DEVICE": "cuda", "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
         "TRAIN_SEQ_LEN": "256", "TRAIN_BATCH_TOKENS": "16384", "VAL_BATCH_SIZE": "65536", "WARMUP_STEPS": "2",
         "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1", "ITERATIONS": "5", "MAX_WALLCLOCK_SECONDS": "0"}


def test_verify_a_cuda_run_in_the_network_namespace(tmp_path, tiny_dataset):
    build = build_submission((), {}, tmp_path / "build")
    options = VerifyOptions(folder=build.out_dir.resolve(), seeds=[1337], env={**SMALL, **tiny_dataset.env()},
                            checks=[], limits=Limits(), progress=False)
    report, _ = verify_submission(options)
    (seed,) = report["seeds"]
    assert seed["status"] == "ok", (options.out / "seed_1337" / "console.txt").read_text()[-3000:]
    verdicts = {c["name"]: c["verdict"] for c in report["checks"] if c["details"].get("seed") == 1337}
    assert verdicts == {"run": "PASS", "train_clock": "PASS", "eval_clock": "PASS", "size": "PASS",
                        "data_access": "PASS", "bpb_denominator": "PASS", "score_ledger": "PASS"}, report["checks"]
    assert report["network"]["isolated"] == (network_isolation()[0] is not None)
    assert [p["name"] for p in seed["phases"]][:3] == ["setup", "compile_warmup", "training"]
