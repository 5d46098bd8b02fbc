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
