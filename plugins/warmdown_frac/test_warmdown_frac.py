"""plugins/warmdown_frac: the multiplier at hand-computed points, the MIN_LR floor, the same values for the
same arguments (every rank), lr and momentum of every group; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted


@pytest.fixture(scope="module")
def ns():
    return load_program(("warmdown_frac",), env={"DEVICE": "cpu"})


def hparams(ns, **values):
    h = ns["Hyperparameters"]()
    for key, value in values.items():
        setattr(h, key, value)
    return h


def test_it_fills_the_schedule_slot(ns):
    assert ns["apply_schedule"] is ns["apply_fraction_schedule"]


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [(0.0, 1.0), (200.0, 1.0), (299.9, 1.0), (300.0, 1.0), (450.0, 0.5), (540.0, 0.2), (600.0, 0.1), (700.0, 0.1)],
)
def test_wallclock_fraction_with_a_floor(ns, elapsed_s, expected):
    h = hparams(ns, max_wallclock_seconds=600.0, warmdown_frac=0.5, min_lr=0.1)
    assert ns["fraction_lr_multiplier"](123, 1000.0 * elapsed_s, h) == pytest.approx(expected)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (149, 1.0), (150, 1.0), (175, 0.5), (199, 0.02), (200, 0.0)])
def test_step_fraction_without_a_cap(ns, step, expected):
    h = hparams(ns, max_wallclock_seconds=0.0, iterations=200, warmdown_frac=0.25, min_lr=0.0)
    assert ns["fraction_lr_multiplier"](step, 99_999.0, h) == pytest.approx(expected)


def test_the_export_reserve_shortens_the_budget_when_the_core_declares_it(ns):
    h = hparams(ns, max_wallclock_seconds=600.0, warmdown_frac=0.5, min_lr=0.0)
    h.gptq_reserve_seconds = 100.0  # budget 500 s: 375 s is 3/4 of it
    assert ns["fraction_lr_multiplier"](0, 375_000.0, h) == pytest.approx(0.5)


def test_every_rank_gets_the_same_values_for_the_same_arguments(ns):
    other = load_program(("warmdown_frac",), env={"DEVICE": "cpu"})  # another process's copy of the program
    h1 = hparams(ns, max_wallclock_seconds=600.0, warmdown_frac=0.85, min_lr=0.1)
    h2 = hparams(other, max_wallclock_seconds=600.0, warmdown_frac=0.85, min_lr=0.1)
    for step, ms in [(1, 10.0), (500, 123_456.7), (5000, 400_000.0), (7000, 599_999.9)]:
        a = [ns["fraction_lr_multiplier"](step, ms, h1) for _ in range(3)]
        b = other["fraction_lr_multiplier"](step, ms, h2)
        assert a == [b] * 3


@pytest.mark.parametrize(("step", "momentum", "mul"), [(0, 0.85, 1.0), (250, 0.90, 1.0), (900, 0.95, 0.5)])
def test_schedule_sets_lr_and_momentum_of_every_group(ns, step, momentum, mul):
    h = hparams(ns, max_wallclock_seconds=0.0, iterations=1000, warmdown_frac=0.2, min_lr=0.0)
    adam = torch.optim.Adam([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.05, "base_lr": 0.05}])
    muon = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "lr": 0.04, "base_lr": 0.04,
                             "momentum": 0.95, "base_momentum": 0.95}])
    assert ns["apply_fraction_schedule"]([adam, muon], step, 0.0, h) == pytest.approx(mul)
    assert adam.param_groups[0]["lr"] == pytest.approx(0.05 * mul)
    assert muon.param_groups[0]["lr"] == pytest.approx(0.04 * mul)
    assert muon.param_groups[0]["momentum"] == pytest.approx(momentum)


@pytest.mark.slow
def test_an_emitted_program_with_warmdown_frac_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("warmdown_frac",), tiny_dataset, tmp_path, env={"WARMDOWN_FRAC": "0.5", "MIN_LR": "0.1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "warmdown_frac=0.5" in run.stdout and "min_lr=0.1" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
