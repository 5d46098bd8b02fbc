"""plugins/muon_eq_r: each output row of the Nesterov update at unit norm before Newton-Schulz, in stacks of
mixed orientation; a Muon step against the direct per-matrix computation; off by MUON_ROW_NORMALIZE=0; e2e."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def ns():
    return program(["muon_eq_r"])


def test_rows_of_mixed_stacks_are_normalised_over_each_matrix_s_output_rows(ns):
    t = ns["MUON_EQ_R"]
    G = torch.randn(4, 8, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    G[1, 3] = 0.0  # an all-zero row stays zero (the clamp), no NaN
    for transposed in ([False] * 4, [True] * 4, [False, True, True, False]):
        out = t.before_orthogonalise(G, [None] * 4, transposed, {}, None).double().numpy()
        for i, tr in enumerate(transposed):
            w = G[i].double().numpy().T if tr else G[i].double().numpy()  # the parameter's (out, in) layout
            expected = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-7)
            np.testing.assert_allclose(out[i].T if tr else out[i], expected, rtol=1e-6, atol=1e-7)
    assert torch.isfinite(t.before_orthogonalise(G, [None] * 4, [False] * 4, {}, None)).all()


def test_a_muon_step_is_ns_of_the_row_normalised_nesterov_update(ns):
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = muon(ns, params, lr=0.1, momentum=0.9)
    opt.newton_schulz = fp32_orthogonaliser(NS5)
    grads = set_grads(params, 1)
    opt.step()
    for d, g in zip(deltas(before, params), grads):
        u = g + 0.9 * g  # buf = g; g' = g + m * buf
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        np.testing.assert_allclose(d, 0.1 * shape_scale(g) * newton_schulz(u, NS5), atol=2e-3, rtol=0)  # bf16 update


def test_muon_row_normalize_0_gives_plain_muon():
    plain, off = program([]), program(["muon_eq_r"], MUON_ROW_NORMALIZE=0)
    results = []
    for ns in (plain, off):
        params = make_params()
        set_grads(params, 1)
        muon(ns, params).step()
        results.append([p.detach() for p in params])
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.slow
def test_an_emitted_program_with_muon_eq_r_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("muon_eq_r",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "muon_row_normalize=True" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
