"""plugins/swa: snapshots only below SWA_START_FRAC at multiples of SWA_EVERY, and a real training loop whose
exported final_model.pt is the uniform average of those snapshots; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.averaging_run import train_and_export

SMALL = {"DEVICE": "cpu", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "NUM_LAYERS": "1",
         "VOCAB_SIZE": "32", "SWA_EVERY": "2", "SWA_START_FRAC": "0.5"}


def test_snapshots_are_taken_in_the_warmdown_at_multiples_of_swa_every_and_averaged():
    ns = load_program(("swa",), env=SMALL)
    assert ns["WeightAverager"] is ns["SwaAverager"]
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    swa = ns["SwaAverager"](model, ns["Hyperparameters"]())
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    for step, lr_mul in [(1, 0.4), (2, 0.9), (3, 0.3), (4, 0.3), (5, 0.2), (6, 0.1)]:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        swa.update(model, step, lr_mul)
    assert swa.steps == [4, 6]  # step 2 is above the start fraction, odd steps are not multiples of 2
    swa.apply(model)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, w0[k] + 5.0)  # mean of w0 + 4 and w0 + 6


def test_without_a_snapshot_the_last_weights_stay():
    ns = load_program(("swa",), env=SMALL)
    model = ns["GPT"](ns["Hyperparameters"]())
    swa = ns["SwaAverager"](model, ns["Hyperparameters"]())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    swa.update(model, 2, 0.9)
    swa.apply(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_the_exported_weights_are_the_average_of_the_snapshots(tmp_path, tiny_dataset):
    # no cap: the warmdown covers the last WARMDOWN_ITERS=4 of 6 steps (lr_mul 1, 1, 1, 0.75, 0.5, 0.25 ...)
    env = {"ITERATIONS": "6", "WARMDOWN_ITERS": "4", "SWA_EVERY": "1", "SWA_START_FRAC": "0.8"}
    out = train_and_export(("swa",), tiny_dataset, tmp_path, env)
    taken = [(s, w) for s, mul, w in out["steps"] if mul < 0.8]
    assert [s for s, _ in taken] == [4, 5, 6]
    for k, v in out["exported"].items():
        mean = sum(w[k].double() for _, w in taken) / len(taken)
        torch.testing.assert_close(v.double(), mean, rtol=1e-6, atol=1e-7)
        if v.is_floating_point() and not torch.equal(taken[0][1][k], taken[-1][1][k]):
            assert not torch.allclose(v, taken[-1][1][k])


@pytest.mark.slow
def test_an_emitted_program_with_swa_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("swa",), tiny_dataset, tmp_path, env={"WARMDOWN_ITERS": "3", "SWA_EVERY": "1",
                                                                 "SWA_START_FRAC": "0.9"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "swa_every=1" in run.stdout and "swa: loaded the average of 2 snapshots" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
