"""plugins/sdclip: clip = k * std(row) with k per class; a larger k gives smaller compressed values."""

from __future__ import annotations

import io
import lzma

import torch

from golfc.testing import load_program


def test_clip_is_k_standard_deviations_per_class():
    ns = load_program(("int6", "sdclip"), env={"SDCLIP_MLP_SIGMAS": "11.5"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    w = torch.randn(50, 200) * torch.linspace(0.1, 2, 50)[:, None]
    std = w.std(dim=1, unbiased=False)
    stage = ns["SDCLIP_STAGE"]
    torch.testing.assert_close(stage.clip("stack.blocks.0.mlp.fc.weight", w, 31, h), 11.5 * std)
    torch.testing.assert_close(stage.clip("stack.blocks.0.attn.c_q.weight", w, 31, h), 12.85 * std)
    torch.testing.assert_close(stage.clip("tok_emb.weight", w, 127, h), 20.0 * std)
    _, scale = ns["lowbit_quantize_matrix"]("stack.blocks.0.attn.c_q.weight", w, 6, h)
    torch.testing.assert_close(scale.float(), (12.85 * std / 31).half().float())


def test_a_larger_k_compresses_smaller(tiny_trained):
    env, state = tiny_trained
    sizes = []
    for k in ("4", "8", "16"):
        ns = load_program(("int6", "sdclip"), env={**env, "SDCLIP_MATRIX_SIGMAS": k, "SDCLIP_EMBED_SIGMAS": k})
        obj, _ = ns["quantize_model"](None, state, ns["Hyperparameters"](), None, None)
        buf = io.BytesIO()
        torch.save(obj["q"], buf)
        sizes.append(len(lzma.compress(buf.getvalue())))
    assert sizes[0] > sizes[1] > sizes[2]


def test_the_hessian_aware_clip_modulates_each_row_by_its_importance():
    ns = load_program(("int6", "gptq", "sdclip"), env={"HESSIAN_CLIP_LAMBDA": "0.175"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    w = torch.randn(12, 40) * torch.linspace(0.2, 1.5, 40)[None, :]
    x = torch.randn(500, 40) * torch.linspace(0.1, 3.0, 40)[None, :]
    H = x.T @ x
    H[:, 5] = H[5, :] = 0.0  # a dead column counts as diag 1
    name = "stack.blocks.0.attn.c_q.weight"
    ns["GPTQ_STAGE"].hessians = {name: H}
    d = torch.diag(H).clone()
    d[5] = 1.0
    d = d + 0.01 * d.mean()  # GPTQ_DAMP
    r = (w.abs() * d / d.mean()).mean(dim=1)
    r = r / r.mean()
    plain = 12.85 * w.std(dim=1, unbiased=False)
    clip = ns["SDCLIP_STAGE"].clip(name, w, 31, h)
    torch.testing.assert_close(clip, plain * (1 + 0.175 * (r - 1)))
    assert not torch.allclose(clip, plain)
    _, scale = ns["lowbit_quantize_matrix"](name, w, 6, h)  # the engine uses it (gptq then rounds)
    torch.testing.assert_close(scale.float(), (clip / 31).half().float())
    # a matrix without a Hessian keeps the plain clip; lambda 0 is plain SDClip
    torch.testing.assert_close(ns["SDCLIP_STAGE"].clip("stack.blocks.1.mlp.fc.weight", w, 31, h), plain)
    h.hessian_clip_lambda = 0.0
    torch.testing.assert_close(ns["SDCLIP_STAGE"].clip(name, w, 31, h), plain)


def test_the_hessian_aware_clip_without_gptq_is_a_one_line_error():
    ns = load_program(("int6", "sdclip"), env={"HESSIAN_CLIP_LAMBDA": "0.2"})
    h = ns["Hyperparameters"]()
    try:
        ns["SDCLIP_STAGE"].prepare(None, {}, h, None, None)
    except ValueError as exc:
        assert str(exc) == "HESSIAN_CLIP_LAMBDA=0.2 needs Hessians: add the gptq plugin (or set HESSIAN_CLIP_LAMBDA=0)"
    else:
        raise AssertionError("no error")
    h.hessian_clip_lambda = 0.0
    ns["SDCLIP_STAGE"].prepare(None, {}, h, None, None)  # plain SDClip needs nothing
