"""plugins/muon: batched Newton-Schulz vs the per-matrix formula, the update math, rank split, groups."""

from __future__ import annotations

import copy

import pytest
import torch

from golfc.testing import load_program

TINY = {
    "VOCAB_SIZE": "64",
    "NUM_LAYERS": "3",
    "MODEL_DIM": "32",
    "NUM_HEADS": "2",
    "NUM_KV_HEADS": "1",
    "DEVICE": "cpu",
}
SHAPES = [(8, 16), (16, 8), (8, 8), (8, 16), (12, 8), (8, 16), (4, 8)]


@pytest.fixture(scope="module")
def ns():
    return load_program(overrides=TINY)


def reference_ns(G, steps=5, dtype=torch.bfloat16):
    """One matrix at a time, as written in shared/spec/baseline.md."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.to(dtype)
    X = X / (X.norm() + 1e-7)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if transposed else X


def fp32_stack_ns(G, steps):
    """The optimizer's Newton-Schulz slot, in fp32: isolates the update math from bf16 noise."""
    return torch.stack([reference_ns(g, steps, torch.float32) for g in G])


def reference_update(g_nesterov):
    scale = max(1.0, g_nesterov.size(0) / g_nesterov.size(1)) ** 0.5
    return reference_ns(g_nesterov, dtype=torch.float32) * scale


def assert_update(actual, expected):
    """Equal up to the bf16 rounding of the shared update buffer."""
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-2)


def ctx_for(ns, rank=0, world_size=1):
    return ns["RunContext"](rank, world_size, rank, torch.device("cpu"), rank == 0, False, 8 // world_size)


def make_params(seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape)) for shape in SHAPES]


def set_grads(params, seed):
    torch.manual_seed(seed)
    grads = [torch.randn_like(p) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return grads


def test_batched_newton_schulz_equals_the_per_matrix_formula(ns):
    torch.manual_seed(0)
    G = torch.randn(5, 64, 128)
    X = ns["muon_newton_schulz"](G, 5)
    assert X.dtype == torch.bfloat16 and X.shape == G.shape
    for i in range(5):
        # bf16 noise: each bf16 iteration differs from an fp32 one by ~0.015 here (entries up to ~0.3)
        torch.testing.assert_close(X[i].float(), reference_ns(G[i]).float(), atol=2e-2, rtol=0)
        torch.testing.assert_close(X[i].float(), reference_ns(G[i], dtype=torch.float32), atol=2e-2, rtol=0)
        s = torch.linalg.svdvals(X[i].float())
        assert s.min() > 0.5 and s.max() < 1.3  # roughly orthogonal rows


def test_two_steps_follow_the_nesterov_update_math(ns):
    params = make_params()
    start = [p.detach().clone() for p in params]
    opt = ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    opt.newton_schulz = fp32_stack_ns
    g1 = set_grads(params, 1)
    opt.step()
    for p, p0, g in zip(params, start, g1):
        # buf = g; g' = g + 0.9 * buf
        assert_update(p0 - p.detach(), 0.1 * reference_update(g + 0.9 * g))
    after1 = [p.detach().clone() for p in params]
    g2 = set_grads(params, 2)
    opt.step()
    for p, p1, a, b in zip(params, after1, g1, g2):
        buf = 0.9 * a + b
        assert torch.allclose(opt.state[p]["momentum_buffer"], buf, atol=1e-6)
        assert_update(p1 - p.detach(), 0.1 * reference_update(b + 0.9 * buf))


def test_each_rank_orthogonalises_its_share_of_every_shape_group(ns):
    """Ranks 0 and 1 of a 2-rank run, without the all-reduce: each matrix moves on exactly one rank."""
    reference = make_params()
    set_grads(reference, 1)
    ns["Muon"](reference, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns)).step()
    moved = []
    for rank in (0, 1):
        params = make_params()
        set_grads(params, 1)
        ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns, rank, 2)).step()
        moved.append([not torch.equal(p, p0) for p, p0 in zip(params, make_params())])
        for p, ref, m in zip(params, reference, moved[-1]):
            if m:
                torch.testing.assert_close(p, ref, atol=1e-6, rtol=0)
    assert all(a != b for a, b in zip(*moved))
    # shape groups: (8, 16) holds indices 0, 1 (transposed), 3, 5 -> ranks 0, 1, 0, 1; the groups
    # (8, 8) [2], (8, 12) [4] and (4, 8) [6] have one member each -> rank 0
    assert moved[0] == [True, False, True, True, True, False, True]


def test_state_round_trips_through_state_dict(ns):
    params = make_params()
    opt = ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    initial = copy.deepcopy(opt.state_dict())
    set_grads(params, 1)
    opt.step()
    assert len(opt.state) == len(params)
    opt.load_state_dict(initial)
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("tie", ["1", "0"])
def test_parameter_groups(tie):
    ns = load_program(overrides={**TINY, "TIE_EMBEDDINGS": tie})
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h)
    adam, muon = ns["build_muon_adam_optimizers"](model, h, ctx_for(ns))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [[names[id(p)] for p in g["params"]] for g in adam.param_groups + muon.param_groups]
    flat = [n for g in groups for n in g]
    assert sorted(flat) == sorted(names.values())  # every parameter in exactly one group
    assert all("base_lr" in g and g["lr"] == g["base_lr"] for g in adam.param_groups + muon.param_groups)
    muon_names = groups[-1]
    assert len(muon_names) == 6 * 3 and all(
        n.endswith(("c_q.weight", "c_k.weight", "c_v.weight", "proj.weight", "fc.weight")) for n in muon_names
    )
    assert muon.param_groups[0]["base_momentum"] == h.muon_momentum == 0.95
    assert adam.defaults["betas"] == (0.9, 0.95) and adam.defaults["eps"] == 1e-8 and adam.defaults["weight_decay"] == 0
    lrs = [g["lr"] for g in adam.param_groups]
    if tie == "1":
        assert groups[0] == ["tok_emb.weight"] and lrs == [0.05, 0.04]
    else:
        assert groups[:2] == [["tok_emb.weight"], ["lm_head.weight"]] and lrs == [0.6, 0.008, 0.04]
    assert {"stack.skip_weights", "stack.blocks.0.attn.q_gain", "stack.blocks.2.resid_mix"} <= set(groups[-2])


def per_matrix_step(opt, params, lr, m, steps):
    """Muon as it was written before its multi-tensor form (session 4): every matrix sliced into a flat bf16
    buffer with its own scale multiply, every update cast to fp32 before the add. Same math, more launches."""
    flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.bfloat16)
    offsets = [sum(p.numel() for p in params[:i]) for i in range(len(params))]
    groups = {}
    for i, p in enumerate(params):
        groups.setdefault((min(p.shape), max(p.shape)), []).append(i)
    for members in groups.values():
        bufs = [opt.state[params[i]]["momentum_buffer"] for i in members]
        grads = [params[i].grad for i in members]
        for b, g in zip(bufs, grads):
            b.mul_(m).add_(g)
        nesterov = [g + m * b for g, b in zip(grads, bufs)]
        transposed = [g.size(0) > g.size(1) for g in nesterov]
        X = opt.newton_schulz(torch.stack([g.mT if t else g for g, t in zip(nesterov, transposed)]), steps)
        for x, i, t in zip(X, members, transposed):
            x = x.mT if t else x
            scale = max(1.0, params[i].size(0) / params[i].size(1)) ** 0.5
            flat[offsets[i] : offsets[i] + params[i].numel()] = (x * scale).reshape(-1)
    with torch.no_grad():
        for o, p in zip(offsets, params):
            p.add_(flat[o : o + p.numel()].view_as(p).to(p.dtype), alpha=-lr)


def test_the_multi_tensor_step_is_bit_identical_to_the_per_matrix_one(ns):
    """Three steps with the real bf16 Newton-Schulz: the same bits as slicing, scaling and casting per matrix."""
    params, previous = make_params(), make_params()
    opt = ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    shadow = ns["Muon"](previous, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    for p in previous:
        shadow.state[p]["momentum_buffer"] = torch.zeros_like(p)
    for seed in (1, 2, 3):
        set_grads(params, seed)
        set_grads(previous, seed)
        opt.step()
        per_matrix_step(shadow, previous, lr=0.1, m=0.9, steps=5)
        for p, q in zip(params, previous):
            assert torch.equal(p, q)
            assert torch.equal(opt.state[p]["momentum_buffer"], shadow.state[q]["momentum_buffer"])


def test_a_matrix_without_a_gradient_stays_and_gets_no_state(ns):
    params = make_params()
    start = [p.detach().clone() for p in params]
    set_grads(params, 1)
    params[3].grad = None  # e.g. a plugin's matrix that this step did not use
    opt = ns["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    opt.step()
    assert torch.equal(params[3], start[3]) and params[3] not in opt.state
    assert all(not torch.equal(p, p0) for i, (p, p0) in enumerate(zip(params, start)) if i != 3)


@pytest.mark.parametrize(("setting", "message"), [
    ("MUON_BACKEND_STEPS=0", "--set MUON_BACKEND_STEPS=0: expected MUON_BACKEND_STEPS >= 1"),
    ("MUON_MOMENTUM=1.5", "--set MUON_MOMENTUM=1.5: expected MUON_MOMENTUM >= 0.0 and MUON_MOMENTUM <= 1.0"),
    ("ADAM_EPS=0", "--set ADAM_EPS=0.0: expected ADAM_EPS > 0.0"),
    ("MATRIX_LR=-0.1", "--set MATRIX_LR=-0.1: expected MATRIX_LR >= 0.0"),
])
def test_out_of_range_optimizer_settings_are_refused_at_build(tmp_path, setting, message):
    from golfc.build import build_submission
    from golfc.errors import HParamError

    name, value = setting.split("=")
    with pytest.raises(HParamError) as info:
        build_submission((), {name: value}, tmp_path)
    assert str(info.value) == message


def test_two_transforms_defining_one_exclusive_stage_undeclared_are_refused_when_muon_is_built():
    """What golfc build cannot see (it refuses two *declared* claims: plugins/polar_ns/test_polar_ns.py): two run-time
    transform objects that both define exchange() without declaring it. One line naming both and the fix."""
    ns = load_program(env={"DEVICE": "cpu"})

    class First:
        def exchange(self, params, updates, group, opt):
            pass

    class Second(First):
        pass

    ns["MUON_TRANSFORMS"] = [First(), Second()]
    with pytest.raises(ns["RunInputError"]) as excinfo:
        ns["Muon"](make_params(), lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns))
    assert str(excinfo.value) == ("Muon transforms First and Second both define exchange(), which one may; expected "
                                  "each plugin defining it to declare Impl(exclusive=('exchange',))")
    alone = Second()
    ns["MUON_TRANSFORMS"] = [alone]  # one is fine: it replaces the default all-reduce
    assert ns["Muon"](make_params(), lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx_for(ns)).exchange.__self__ is alone
