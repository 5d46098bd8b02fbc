"""plugins/qat: the straight-through formula, the export grid it matches, the late switch (also under
torch.compile, where a Python flag would be a constant of the graph), and a tiny end-to-end run."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import TINY_QUANT_ENV, load_program


def qat_program(**env):
    ns = load_program(("int6", "qat"), env={**TINY_QUANT_ENV, **env})
    ns["QAT_STATE"].clear()
    ns["QAT_STATE"].update(configured=False, on=False)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    for p in model.parameters():
        if p.ndim == 2:
            torch.nn.init.normal_(p, std=0.1)
    return ns, h, model


def test_forward_is_the_export_grid_and_backward_the_identity():
    ns, h, model = qat_program(LATE_QAT_THRESHOLD="0")
    ns["qat_train_hook"](model, 0, 1.0, h)
    lin = model.stack.blocks[0].mlp.fc  # 128 x 64 > QUANT_KEEP_FLOAT_NUMEL: int6
    w = lin.weight.detach().clone().requires_grad_(True)
    out = lin.weight_transform(w)
    q, _ = ns["lowbit_quantize_matrix"]("stack.blocks.0.mlp.fc.weight", w.detach(), 6, h)
    # the export's percentile clip equals the row max here up to rounding of the fp16 scale
    expected = torch.clamp(torch.round(w.detach() / (w.detach().abs().amax(1, keepdim=True) / 31).half().float()),
                           -31, 31)
    assert (expected.to(torch.int8) != q).float().mean() < 0.01
    torch.testing.assert_close(out.detach(), expected * (w.detach().abs().amax(1, keepdim=True) / 31).half().float())
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight through


def test_float_kept_layers_and_eval_mode_are_untouched():
    ns, h, model = qat_program(LATE_QAT_THRESHOLD="0", QUANT_KEEP_FLOAT_NUMEL="5000")
    ns["qat_train_hook"](model, 0, 1.0, h)
    c_q = model.stack.blocks[0].attn.c_q  # 64 x 64 = 4096 <= 5000: kept fp16 by the export, so no fake quant
    assert c_q.weight_transform.qat_on.item() == 0.0
    fc = model.stack.blocks[0].mlp.fc
    assert fc.weight_transform.qat_on.item() == 1.0
    model.eval()
    assert fc.weight_transform(fc.weight) is fc.weight


def test_late_switch_waits_for_the_threshold():
    ns, h, model = qat_program(LATE_QAT_THRESHOLD="0.15")
    flags = lambda: {m.weight_transform.qat_on.item() for m in model.modules() if hasattr(m, "weight_transform")  # noqa: E731
                     and m.weight_transform is not None}
    ns["qat_train_hook"](model, 0, 1.0, h)
    ns["qat_train_hook"](model, 50, 0.2, h)
    assert flags() == {0.0}
    ns["qat_train_hook"](model, 60, 0.1, h)
    assert flags() == {1.0}
    ns["qat_train_hook"](model, 61, 0.5, h)  # once on, stays on
    assert flags() == {1.0}


def test_the_switch_takes_effect_in_a_compiled_forward():
    """fullgraph torch.compile (dynamo + AOT autograd; inductor's CPU code generation takes minutes here and is
    checked on the GPU by tests/gpu/test_qat_compile.py): the compiled loss and gradients change when QAT turns on,
    and match the eager model's."""
    ns, h, model = qat_program(LATE_QAT_THRESHOLD="0.5")
    ids = torch.randint(0, h.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(model, dynamic=False, fullgraph=True, backend="aot_eager")
    ns["qat_train_hook"](model, 0, 1.0, h)
    before = compiled(ids, ids)
    before.backward()
    grad_before = model.stack.blocks[0].mlp.fc.weight.grad.clone()
    model.zero_grad()
    ns["qat_train_hook"](model, 10, 0.4, h)
    after = compiled(ids, ids)
    after.backward()
    grad_after = model.stack.blocks[0].mlp.fc.weight.grad.clone()
    model.zero_grad()
    assert abs(after.item() - before.item()) > 1e-4
    assert not torch.allclose(grad_before, grad_after)
    eager = model(ids, ids)
    torch.testing.assert_close(after, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_an_emitted_program_with_late_qat_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    run = run_emitted(("int6", "qat"), tiny_dataset, tmp_path,
                      env={"QUANT_KEEP_FLOAT_NUMEL": "1024", "ITERATIONS": "6", "WARMDOWN_ITERS": "6",
                           "LATE_QAT_THRESHOLD": "0.5"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "qat: on at step" in run.stdout and run.final_bpb is not None
