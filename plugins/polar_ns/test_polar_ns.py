"""plugins/polar_ns: the coefficients of tricks.md row 23, the iteration against a direct per-matrix computation,
Muon using it (compiled with it when COMPILE is on), its orthogonality against NS5, the exclusive stage; e2e."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golfc.testing import run_emitted
from tests.muon_reference import deltas, make_params, muon, newton_schulz, program, set_grads, shape_scale

TRICKS_ROW_23 = [(8.1566, -22.4833, 15.8788), (4.0429, -2.8089, 0.5000), (3.8917, -2.7725, 0.5061),
                 (3.2858, -2.3681, 0.4645), (2.3465, -1.7098, 0.4232)]


@pytest.fixture(scope="module")
def ns():
    return program(["polar_ns"])


def test_coefficients_are_those_of_the_records():
    ns = program(["polar_ns"])
    assert len(ns["POLAR_NS_COEFFS"]) == 5
    for got, want in zip(ns["POLAR_NS_COEFFS"], TRICKS_ROW_23):
        assert np.allclose(got, want, atol=5e-5)


def test_the_batched_iteration_equals_the_per_matrix_formula(ns):
    G = torch.randn(3, 16, 32, generator=torch.Generator().manual_seed(2))
    coeffs = ns["POLAR_NS_COEFFS"]
    X = ns["polar_express_ns"](G, 5)
    assert X.dtype == torch.bfloat16 and X.shape == G.shape
    X32 = ns["polar_express_ns"](G, 7, dtype=torch.float32).double().numpy()
    for i in range(3):  # in fp32: the formula to rounding; a 6th and 7th iteration repeat the last tuple
        np.testing.assert_allclose(X32[i], newton_schulz(G[i].double().numpy(), coeffs, steps=7), atol=2e-5, rtol=0)
        one = G[i].bfloat16()  # bf16, one matrix at a time with the same ops: bf16 rounding of the batch only
        one = one / (one.norm() + 1e-7)
        for a, b, c in coeffs:
            A = one @ one.T
            one = a * one + (b * A + c * (A @ A)) @ one
        torch.testing.assert_close(X[i].float(), one.float(), atol=2e-2, rtol=0)


def test_its_singular_values_are_closer_to_one_than_ns5(ns):
    G = torch.randn(4, 32, 64, generator=torch.Generator().manual_seed(3)) @ torch.diag(torch.logspace(-2, 0, 64))
    polar = torch.linalg.svdvals(ns["polar_express_ns"](G, 5).float())
    ns5 = torch.linalg.svdvals(ns["muon_newton_schulz"](G, 5).float())
    assert (polar - 1).abs().mean() < (ns5 - 1).abs().mean()


def test_muon_orthogonalises_with_it(ns):
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = muon(ns, params, lr=0.1, momentum=0.9)
    assert opt.newton_schulz == ns["POLAR_NS"].orthogonalise  # COMPILE off on the CPU: called as it is
    opt.newton_schulz = lambda G, steps: ns["polar_express_ns"](G, steps, dtype=torch.float32)  # no bf16 noise
    grads = set_grads(params, 1)
    opt.step()
    for d, g in zip(deltas(before, params), grads):
        expected = 0.1 * shape_scale(g) * newton_schulz(g + 0.9 * g, ns["POLAR_NS_COEFFS"])
        np.testing.assert_allclose(d, expected, atol=2e-3, rtol=0)  # the bf16 update


def test_two_orthogonalisers_are_refused_at_build_and_at_run_time(tmp_path, plugin_dir):
    from golfc.build import build_submission
    from golfc.errors import GolfcError
    from golfc.testing import load_program

    runtime = ("import torch\n\nclass Other:\n    def orthogonalise(self, G, steps):\n        return G.bfloat16()\n\n"
               "OTHER = Other()\n")
    init = ('from golfc import Impl, PluginInfo, hookimpl\nGOLFC_PLUGIN = PluginInfo(summary="x")\n\n'
            "@hookimpl\ndef golfc_muon_transform():\n    return Impl(module='{}_runtime', symbols='{}'{})\n")
    plugin_dir.add("other", init.format("other", "OTHER", ", exclusive=('orthogonalise',)"), runtime)
    with pytest.raises(GolfcError, match="polar_ns and other both claim 'orthogonalise' of slot 'muon_transform'"):
        build_submission(("polar_ns", "other"), {}, tmp_path / "out", plugins_dir=plugin_dir.root)
    plugin_dir.add("undeclared", init.format("undeclared", "OTHER2", ""), runtime.replace("OTHER", "OTHER2"))
    ns = load_program(("polar_ns", "undeclared"), env={"DEVICE": "cpu"}, plugins_dir=plugin_dir.root)
    with pytest.raises(ns["RunInputError"], match="both define orthogonalise"):
        muon(ns, make_params())


@pytest.mark.slow
def test_an_emitted_program_with_polar_ns_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("polar_ns",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "plugins/polar_ns:" in (tmp_path / "train_gpt.src.py").read_text()
    assert run.final_bpb is not None and run.final_bpb > 0
