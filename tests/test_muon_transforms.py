"""The optimizer plugins compose inside the one Muon: normuon + muon_eq_r + polar_ns + weight_decay (+ parallel_muon)
run in the documented stage order, and two steps of the stack equal the direct per-matrix computation of all four;
tests/test_kitchen_sink.py trains an emitted program with all five (and every other compatible plugin) on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.muon_reference import deltas, make_params, muon, newton_schulz, program, set_grads, shape_scale

STACK = ("normuon", "muon_eq_r", "polar_ns", "weight_decay", "parallel_muon")


@pytest.fixture(scope="module")
def ns():
    return program(STACK, MUON_WD=0.2, MUON_BETA2=0.9)


def test_transforms_run_in_the_documented_stage_order(ns):
    names = [type(t).__name__ for t in ns["MUON_TRANSFORMS"]]  # Impl.order 10, 20, 30, 40, 50
    assert names == ["MuonWeightDecay", "ParallelMuon", "MuonRowEqualise", "PolarExpress", "NorMuon"]


def test_two_steps_of_the_stack_equal_the_direct_computation(ns):
    coeffs = ns["POLAR_NS_COEFFS"]
    params = make_params()
    opt = muon(ns, params, lr=0.1, momentum=0.9)
    assert opt.newton_schulz == ns["POLAR_NS"].orthogonalise
    opt.newton_schulz = lambda G, steps: ns["polar_express_ns"](G, steps, dtype=torch.float32)  # no bf16 noise
    w = [p.detach().double().numpy() for p in params]
    buf = [np.zeros_like(x) for x in w]
    v = [np.zeros(x.shape[0]) for x in w]
    for step, seed in ((1, 1), (2, 2)):
        before = [p.detach().clone() for p in params]
        grads = set_grads(params, seed)
        opt.step()
        for i, (g, d) in enumerate(zip(grads, deltas(before, params))):
            buf[i] = 0.9 * buf[i] + g
            u = g + 0.9 * buf[i]  # Nesterov
            u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-7)  # MuonEq-R
            o = newton_schulz(u, coeffs)  # Polar Express
            v[i] = 0.9 * v[i] + 0.1 * (o**2).mean(axis=1)  # NorMuon
            y = o / (np.sqrt(v[i] / (1 - 0.9**step))[:, None] + 1e-8)
            y = y * np.linalg.norm(o) / np.linalg.norm(y)
            decayed = before[i].double().numpy() * (1 - 0.1 * 0.2)  # weight decay, then the update
            np.testing.assert_allclose(d, before[i].double().numpy() - decayed + 0.1 * shape_scale(g) * y,
                                       atol=3e-3, rtol=0)  # the bf16 update
