"""plugins/weight_decay: Muon's decoupled decay p *= 1 - lr * MUON_WD * taper before the update, Adam's groups
as AdamW (EMBED_WD, ADAM_WD) step for step, the taper at hand-computed points and through the run events; e2e."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golfc.testing import cpu_context, run_emitted
from tests.muon_reference import deltas, make_params, muon, program, set_grads


@pytest.fixture(scope="module")
def ns():
    return program(["weight_decay"], MUON_WD=0.5, EMBED_WD=0.3, ADAM_WD=0.2, WD_TAPER_START_FRAC=0.6,
                   WD_TAPER_FINAL_MULT=0.2)


def test_a_muon_step_is_the_plain_update_of_the_decayed_weights(ns):
    plain = program([])
    results = []
    for program_ns in (plain, ns):
        params = make_params()
        opt = muon(program_ns, params, lr=0.1, momentum=0.9)
        set_grads(params, 1)
        params[2].grad = None  # a matrix without a gradient is neither updated nor decayed
        opt.step()
        results.append(params)
    before = [p.detach() for p in make_params()]
    plain_delta = deltas(before, results[0])
    for i, (b, p, d) in enumerate(zip(before, results[1], plain_delta)):
        decay = 1.0 if i == 2 else 1.0 - 0.1 * 0.5
        np.testing.assert_allclose(p.detach().double().numpy(), b.double().numpy() * decay - d, rtol=0, atol=1e-6)


def test_adam_groups_step_as_adamw_with_their_decay(ns):
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    adam, _ = ns["build_optimizers"](model, h, cpu_context(ns))
    assert [(g["name"], g["weight_decay"], g["decoupled_weight_decay"]) for g in adam.param_groups] == [
        ("embed", 0.3, True), ("scalar", 0.2, True)]
    reference = [[p.detach().clone().requires_grad_() for p in g["params"]] for g in adam.param_groups]
    groups = [{"params": ps, "lr": g["lr"], "weight_decay": g["weight_decay"]}
              for ps, g in zip(reference, adam.param_groups)]
    adamw = torch.optim.AdamW(groups, betas=(h.beta1, h.beta2), eps=h.adam_eps)
    for seed in (1, 2):
        generator = torch.Generator().manual_seed(seed)
        for g, ref in zip(adam.param_groups, reference):
            for p, r in zip(g["params"], ref):
                p.grad = torch.randn(p.shape, generator=generator)
                r.grad = p.grad.clone()
        adam.step()
        adamw.step()
    for g, ref in zip(adam.param_groups, reference):
        for p, r in zip(g["params"], ref):
            torch.testing.assert_close(p.detach(), r.detach(), rtol=0, atol=1e-7)


@pytest.mark.parametrize(("frac", "mult"), [(0.0, 1.0), (0.6, 1.0), (0.8, 0.6), (1.0, 0.2), (1.3, 0.2)])
def test_taper_multiplier(ns, frac, mult):
    assert ns["wd_taper_multiplier"](frac, ns["Hyperparameters"]()) == pytest.approx(mult)


def test_run_fraction_and_the_events_set_the_multiplier(ns):
    h = ns["Hyperparameters"]()
    h.max_wallclock_seconds, h.gptq_reserve_seconds, h.iterations = 0.0, 0.0, 10
    assert ns["wd_run_fraction"](8, 123.0, h) == 0.8  # uncapped: the step about to run over ITERATIONS
    events = ns["WeightDecayTaper"](None, h, None)
    assert type(events) in ns["RUN_EVENTS"]
    events.step(None, 8, 0.0, 1.0)
    assert ns["MUON_WEIGHT_DECAY"].mult == pytest.approx(0.6)
    h.max_wallclock_seconds, h.gptq_reserve_seconds = 100.0, 20.0
    events.step(None, 3, 72_000.0, 1.0)  # capped: 72 s of 80 s
    assert ns["MUON_WEIGHT_DECAY"].mult == pytest.approx(1.0 + (0.2 - 1.0) * (0.9 - 0.6) / 0.4)
    params = make_params()
    opt = muon(ns, params, lr=0.1)  # setup resets the taper, so does train_start
    assert ns["MUON_WEIGHT_DECAY"].mult == 1.0
    events.step(None, 10, 80_000.0, 1.0)
    before = [p.detach().clone() for p in params]
    with torch.no_grad():  # as inside Muon.step
        ns["MUON_WEIGHT_DECAY"].before_update(params, opt.param_groups[0], opt)  # no grads: nothing decays
    assert all(torch.equal(a, b) for a, b in zip(before, params))
    set_grads(params, 1)
    with torch.no_grad():
        ns["MUON_WEIGHT_DECAY"].before_update(params, opt.param_groups[0], opt)
    for a, b in zip(before, params):
        torch.testing.assert_close(b.detach(), a * (1 - 0.1 * 0.5 * 0.2), rtol=0, atol=0)
    events.train_start(None)
    assert ns["MUON_WEIGHT_DECAY"].mult == 1.0


@pytest.mark.slow
def test_an_emitted_program_with_weight_decay_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("weight_decay",), tiny_dataset, tmp_path, env={"WD_TAPER_FINAL_MULT": "0.5"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "weight_decay: muon:0.095 embed:0.085 adam:0.02 taper:0.7->0.5" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
