"""plugins/warmdown_schedule: LR multiplier and Muon momentum at hand-computed points."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program


@pytest.fixture(scope="module")
def ns():
    return load_program(overrides={"DEVICE": "cpu"})


def hparams(ns, **values):
    h = ns["Hyperparameters"]()
    for key, value in values.items():
        setattr(h, key, value)
    return h


@pytest.mark.parametrize(
    ("step", "elapsed_ms", "expected"),
    [
        (0, 0.0, 1.0),  # no estimate yet: remaining 600 s > 0
        (1000, 100_000.0, 1.0),  # 100 ms/step: warmdown 120 s, remaining 500 s
        (100, 50_000.0, 550_000 / 600_000),  # 500 ms/step: warmdown 600 s >= remaining 550 s
        (1000, 540_000.0, 60_000 / 648_000),  # 540 ms/step: warmdown 648 s, remaining 60 s
        (1200, 600_000.0, 0.0),  # at the cap
        (1300, 700_000.0, 0.0),  # past it
    ],
)
def test_wallclock_warmdown(ns, step, elapsed_ms, expected):
    h = hparams(ns, max_wallclock_seconds=600.0, warmdown_iters=1200)
    assert ns["warmdown_lr_multiplier"](step, elapsed_ms, h) == pytest.approx(expected)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (79, 1.0), (80, 1.0), (90, 0.5), (99, 0.05), (100, 1.0)])
def test_iteration_warmdown_without_a_cap(ns, step, expected):
    h = hparams(ns, max_wallclock_seconds=0.0, iterations=100, warmdown_iters=20)
    assert ns["warmdown_lr_multiplier"](step, 123_456.0, h) == pytest.approx(expected)


def test_no_warmdown(ns):
    h = hparams(ns, warmdown_iters=0)
    assert ns["warmdown_lr_multiplier"](10_000, 599_999.0, h) == 1.0


@pytest.mark.parametrize(
    ("step", "momentum", "mul"), [(0, 0.85, 1.0), (250, 0.90, 1.0), (500, 0.95, 1.0), (950, 0.95, 0.5)]
)
def test_schedule_sets_lr_and_momentum_of_every_group(ns, step, momentum, mul):
    h = hparams(ns, max_wallclock_seconds=0.0, iterations=1000, warmdown_iters=100)
    p = torch.nn.Parameter(torch.zeros(2))
    adam = torch.optim.Adam([{"params": [p], "lr": 0.05, "base_lr": 0.05}])
    muon = torch.optim.SGD(
        [
            {
                "params": [torch.nn.Parameter(torch.zeros(2, 2))],
                "lr": 0.04,
                "base_lr": 0.04,
                "momentum": 0.95,
                "base_momentum": 0.95,
            }
        ]
    )
    assert ns["apply_warmdown_schedule"]([adam, muon], step, 0.0, h) == pytest.approx(mul)
    assert adam.param_groups[0]["lr"] == pytest.approx(0.05 * mul)
    assert muon.param_groups[0]["lr"] == pytest.approx(0.04 * mul)
    assert muon.param_groups[0]["momentum"] == pytest.approx(momentum)
    assert "momentum" not in adam.param_groups[0]
