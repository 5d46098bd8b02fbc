"""plugins/ema: the update formula, and a real training loop whose exported final_model.pt is the EMA of the
step-by-step weights (not the last weights); the pair ema + swa is refused; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted
from tests.averaging_run import train_and_export


def test_update_is_decay_times_average_plus_the_rest_times_weights():
    ns = load_program(("ema",), env={"DEVICE": "cpu", "EMA_DECAY": "0.9", "MODEL_DIM": "16", "NUM_HEADS": "2",
                                     "NUM_KV_HEADS": "1", "NUM_LAYERS": "1", "VOCAB_SIZE": "32"})
    assert ns["WeightAverager"] is ns["EmaAverager"]
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    ema = ns["EmaAverager"](model, ns["Hyperparameters"]())
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, 1, 1.0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, 2, 1.0)
    ema.apply(model)
    for k, v in model.state_dict().items():  # 0.81 * w0 + 0.09 * (w0 + 1) + 0.1 * (w0 + 2) = w0 + 0.29
        torch.testing.assert_close(v, w0[k] + 0.29)


@pytest.mark.slow
def test_the_exported_weights_are_the_ema_of_the_step_by_step_weights(tmp_path, tiny_dataset):
    out = train_and_export(("ema",), tiny_dataset, tmp_path, {"ITERATIONS": "4", "EMA_DECAY": "0.6"})
    assert [s for s, _, _ in out["steps"]] == [1, 2, 3, 4]
    expected = {k: v.double() for k, v in out["initial"].items()}
    for _, _, weights in out["steps"]:
        for k in expected:
            expected[k] = 0.6 * expected[k] + 0.4 * weights[k].double()
    last = out["steps"][-1][2]
    for k, v in out["exported"].items():
        torch.testing.assert_close(v.double(), expected[k], rtol=1e-6, atol=1e-7)
        if v.is_floating_point() and v.numel() > 1 and not torch.equal(last[k], out["initial"][k]):
            assert not torch.allclose(v, last[k])  # not the last step's weights


def test_ema_and_swa_together_are_refused_naming_both(tmp_path):
    from golfc.build import build_submission
    from golfc.errors import GolfcError

    with pytest.raises(GolfcError, match=r"(ema cannot be combined with swa|swa cannot be combined with ema)"):
        build_submission(("ema", "swa"), {}, tmp_path)


@pytest.mark.slow
def test_an_emitted_program_with_ema_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("ema",), tiny_dataset, tmp_path, env={"EMA_DECAY": "0.5"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ema_decay=0.5" in run.stdout and "ema: loaded the average" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
