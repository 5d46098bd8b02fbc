"""plugins/gptq: the Hessians it collects, rounding that lowers the output error against round-to-nearest,
calibration that reads training shards only, and an emitted run whose calibration fits the reserved time."""

from __future__ import annotations

import re

import pytest
import torch

from golfc.testing import TINY_QUANT_ENV, cpu_context, load_program


def test_gptq_lowers_the_layer_output_error_against_round_to_nearest():
    ns = load_program(("int6", "gptq"))
    torch.manual_seed(0)
    w = torch.randn(96, 160) * 0.05
    x = torch.randn(2048, 160) @ torch.randn(160, 160) * 0.2 + torch.randn(160)  # correlated inputs
    H = x.T @ x
    scale = ns["lowbit_scale"](ns["lowbit_percentile_clip"](w, 0.9999984), 31)
    rtn = ns["lowbit_round"](w, scale, 31)
    gq = ns["gptq_round"](w, scale, 31, H, block_size=32)
    assert gq.dtype == torch.int8 and int(gq.abs().max()) <= 31
    out_err = lambda q: ((q.float() * scale.float()[:, None] - w) @ x.T).square().sum().item()  # noqa: E731
    assert out_err(gq) < 0.7 * out_err(rtn)
    same = ns["gptq_round"](w, scale, 31, torch.eye(160))  # H = I: no correlation to exploit: round to nearest
    assert (same != rtn).float().mean() < 0.01


def test_dead_columns_are_zero():
    ns = load_program(("int6", "gptq"))
    w = torch.randn(8, 16)
    x = torch.randn(100, 16)
    x[:, 3] = 0.0
    q = ns["gptq_round"](w, ns["lowbit_scale"](w.abs().amax(1), 31), 31, x.T @ x, block_size=4)
    assert torch.equal(q[:, 3], torch.zeros(8, dtype=torch.int8))


class FixedCalibration:
    def __init__(self, batches):
        self.batches_given, self.done = batches, False

    def batches(self, count):
        yield from self.batches_given[:count]

    def finished(self):
        self.done = True


def test_hessians_are_the_inputs_gram_matrices():
    ns = load_program(("int6", "gptq"), env={**TINY_QUANT_ENV, "GPTQ_CALIB_BATCHES": "2"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    batches = [torch.randint(0, h.vocab_size, (2, 64)) for _ in range(3)]
    seen = []
    handle = model.stack.blocks[1].mlp.proj.register_forward_hook(lambda m, a, o: seen.append(a[0].reshape(-1, 128)))
    calibration = FixedCalibration(batches)
    stage = ns["GPTQ_STAGE"]
    stage.prepare(model, model.state_dict(), h, cpu_context(ns, vocab=h.vocab_size), calibration)
    handle.remove()
    assert calibration.done and len(seen) == 2  # GPTQ_CALIB_BATCHES of the three offered
    x = torch.cat(seen).float()  # bf16 under autocast, as on the GPU
    torch.testing.assert_close(stage.hessians["stack.blocks.1.mlp.proj.weight"], x.T @ x, rtol=1e-4, atol=1e-3)
    linears = {n for n, m in model.named_modules() if isinstance(m, ns["CastedLinear"])}
    assert set(stage.hessians) == {f"{n}.weight" for n in linears} | {"tok_emb.weight"}  # tied head: final norm
    assert model.training  # the mode is restored


@pytest.mark.slow
def test_an_emitted_gptq_run_calibrates_on_train_data_inside_the_reserved_clock(tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    run = run_emitted(("int6", "gptq", "zstd"), tiny_dataset, tmp_path,
                      env={"QUANT_KEEP_FLOAT_NUMEL": "1024", "ITERATIONS": "50", "MAX_WALLCLOCK_SECONDS": "3600",
                           "GPTQ_RESERVE_SECONDS": "3599.999", "GPTQ_CALIB_BATCHES": "3"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"stopping_early: wallclock_cap train_time:\d+ms step:1/50", run.stdout)  # the reserve stopped it
    line = re.search(r"^calibration:train_calibration batches:3 seconds:[\d.]+ last_data_read_ms:(\d+) done_ms:(\d+) "
                     r"train_ms:(\d+)$", run.stdout, re.M)
    assert line and int(line[3]) <= int(line[1]) <= int(line[2])
    assert "gptq: hessians of 13 matrices" in run.stdout and run.final_bpb is not None
