"""plugins/normuon: two steps of the per-neuron second moment (bias-corrected, norm kept) against a direct numpy
computation, on stacks of mixed orientation; state saved and restored with the optimizer; e2e."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from golfc.testing import run_emitted
from tests.muon_reference import (
    NS5,
    deltas,
    fp32_orthogonaliser,
    make_params,
    muon,
    newton_schulz,
    program,
    set_grads,
    shape_scale,
)


def normuon_reference(U, v, t, beta2, keep_norm=True):
    """One matrix U (out, in), its row second moment v (out,) and step t: (U', v')."""
    v = beta2 * v + (1 - beta2) * (U**2).mean(axis=1)
    Y = U / (np.sqrt(v / (1 - beta2**t))[:, None] + 1e-8)
    if keep_norm:
        Y = Y * np.linalg.norm(U) / np.linalg.norm(Y)
    return Y, v


@pytest.mark.parametrize("keep_norm", [1, 0])
def test_after_orthogonalise_on_a_mixed_stack_matches_the_formula_over_two_steps(keep_norm):
    ns = program(["normuon"], MUON_BETA2=0.9, NORMUON_KEEP_NORM=keep_norm)
    t = ns["NORMUON"]
    params = [torch.nn.Parameter(torch.zeros(s)) for s in [(8, 16), (16, 8), (8, 16)]]
    transposed = [False, True, False]
    opt = muon(ns, params)
    assert t.beta2 == 0.9 and t.keep_norm == bool(keep_norm)
    v = [np.zeros(p.shape[0]) for p in params]
    for step, seed in ((1, 5), (2, 6)):
        X = torch.randn(3, 8, 16, generator=torch.Generator().manual_seed(seed)).bfloat16()
        out = t.after_orthogonalise(X, params, transposed, opt.param_groups[0], opt)
        assert out.dtype == torch.float32 and out.shape == X.shape
        for i, tr in enumerate(transposed):
            U = X[i].double().numpy()
            U = U.T if tr else U  # the parameter's (out, in) layout: output neurons are rows
            expected, v[i] = normuon_reference(U, v[i], step, 0.9, bool(keep_norm))
            got = out[i].double().numpy()
            np.testing.assert_allclose(got.T if tr else got, expected, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(opt.state[params[i]]["normuon_v"].double().numpy(), v[i], rtol=1e-5)
            assert opt.state[params[i]]["normuon_step"] == step
    if keep_norm:  # the rows now have equal RMS where their second moments agree; the Frobenius norm is kept
        np.testing.assert_allclose(out.norm(dim=(1, 2)).numpy(), X.float().norm(dim=(1, 2)).numpy(), rtol=1e-5)


def test_a_muon_step_and_its_state_round_trip():
    ns = program(["normuon"])
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = muon(ns, params, lr=0.1, momentum=0.9)
    initial = copy.deepcopy(opt.state_dict())
    opt.newton_schulz = fp32_orthogonaliser(NS5)
    grads = set_grads(params, 1)
    opt.step()
    for d, g in zip(deltas(before, params), grads):
        U = newton_schulz(g + 0.9 * g, NS5)
        expected, _ = normuon_reference(U, np.zeros(g.shape[0]), 1, 0.95)
        np.testing.assert_allclose(d, 0.1 * shape_scale(g) * expected, atol=2e-3, rtol=0)  # the bf16 update
    saved = opt.state_dict()
    assert all("normuon_v" in s and s["normuon_step"] == 1 for s in saved["state"].values())
    opt.load_state_dict(initial)  # the compile warmup's reset
    assert len(opt.state) == 0


@pytest.mark.slow
def test_an_emitted_program_with_normuon_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("normuon",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "muon_beta2=0.95" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
