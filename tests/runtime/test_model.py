"""core/model: parameter count and dtypes, RoPE, attention hooks, the loss paths."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import load_program


def test_baseline_parameter_count(program):
    h = program["Hyperparameters"]()
    with torch.device("meta"):
        model = program["GPT"](h)
    assert sum(p.numel() for p in model.parameters()) == 17_059_912


def test_parameter_dtypes_on_cuda_policy(tiny_program):
    torch.manual_seed(0)
    model = tiny_program["GPT"](tiny_program["Hyperparameters"]())
    # the policy only looks at the device type, so it can be checked without a GPU
    tiny_program["cast_params_for_training"](model, torch.device("cuda"))
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert dtypes.pop("tok_emb.weight") == torch.bfloat16
    assert set(dtypes.values()) == {torch.float32}  # linear weights, vectors and control tensors
    tiny_program["cast_params_for_training"](model, torch.device("cpu"))  # no-op on CPU


def test_init_follows_the_baseline(tiny_program):
    h = tiny_program["Hyperparameters"]()
    torch.manual_seed(0)
    model = tiny_program["GPT"](h)
    assert abs(model.tok_emb.weight.std().item() - h.tied_embed_init_std) < 5e-4
    block = model.stack.blocks[0]
    assert torch.all(block.attn.proj.weight == 0) and torch.all(block.mlp.proj.weight == 0)
    assert torch.all(block.attn.q_gain == h.qk_gain_init) and block.attn.c_q.bias is None
    assert model.lm_head is None


def test_rotary_is_the_half_split_rotation(tiny_program):
    rotary = tiny_program["Rotary"](8, 10000.0, 4)
    x = torch.randn(1, 6, 1, 8)  # (B, T, H, D), longer than the cached 4 positions: the tables grow
    y = rotary(x)
    for t in range(6):
        for i in range(4):
            angle = t * 10000.0 ** (-2 * i / 8)
            c, s = math.cos(angle), math.sin(angle)
            x1, x2 = x[0, t, 0, i], x[0, t, 0, i + 4]
            assert torch.allclose(y[0, t, 0, i], x1 * c + x2 * s, atol=1e-5)
            assert torch.allclose(y[0, t, 0, i + 4], -x1 * s + x2 * c, atol=1e-5)
    assert rotary.cos.shape == (1, 6, 1, 4)


def test_rotary_bf16_tables_are_the_ones_the_reference_trains_with(tiny_program):
    """The reference casts its model to bf16 (so its frequencies are bf16) and builds its tables inside its
    compiled graph, where the positions, the products and cos/sin are fp32 and only the stored tables round to
    bf16 (on an H200: bench/results/2026-12-04_rope_tables_h200.json; tests/gpu compares on the device)."""
    exact = tiny_program["Rotary"](64, 10000.0, 1024, False)
    reference = tiny_program["Rotary"](64, 10000.0, 1024, True)
    assert reference.cos.dtype == torch.bfloat16 and exact.cos.dtype == torch.float32
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64)
    angles = torch.outer(torch.arange(1024, dtype=torch.float32), inv_freq.bfloat16().float())
    assert torch.equal(reference.cos[0, :, 0], angles.cos().bfloat16())
    assert torch.equal(reference.sin[0, :, 0], angles.sin().bfloat16())
    assert not torch.equal(reference.cos[0, 257], reference.cos[0, 256])  # positions are not rounded
    # not eager bf16 arithmetic (golfc's tables before 2026-12-04): positions and products rounded, 2 rad off
    eager = torch.outer(torch.arange(1024, dtype=torch.bfloat16), inv_freq.bfloat16()).cos()
    assert (eager.float() - reference.cos[0, :, 0].float()).abs().max() > 1.0
    assert torch.equal(exact.cos[0, :, 0], torch.outer(torch.arange(1024.0), inv_freq).cos())
    assert tiny_program["Hyperparameters"].rope_bf16_tables is True  # the default is the reference's


def test_cast_params_for_training_rounds_every_parameter_through_bf16_as_the_reference(tiny_program):
    """The reference calls model.bfloat16() and then puts linears and control tensors back in fp32: their
    initial values are bf16 numbers stored in fp32; the token embedding stays bf16. On CPU nothing changes."""
    h = tiny_program["Hyperparameters"]()
    torch.manual_seed(0)
    model = tiny_program["GPT"](h)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tiny_program["cast_params_for_training"](model, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    tiny_program["cast_params_for_training"](model, torch.device("cuda"))  # casts only: runs without a GPU
    for name, p in model.named_parameters():
        assert torch.equal(p.float(), before[name].bfloat16().float()), name
        assert p.dtype == (torch.bfloat16 if name == "tok_emb.weight" else torch.float32), name
    assert any(not torch.equal(before[n], p.float()) for n, p in model.named_parameters() if p.dtype == torch.float32)


def test_attention_matches_a_hand_written_reference_and_calls_the_hooks(tiny_overrides):
    ns = load_program(overrides={**tiny_overrides, "NUM_HEADS": "4", "NUM_KV_HEADS": "2"})
    calls = []

    def qk_hook(q, k, layer, h):
        calls.append(("qk", layer, tuple(q.shape), tuple(k.shape)))
        return q, k

    class PostHook(torch.nn.Module):
        def __init__(self, h, layer):
            super().__init__()
            self.layer = layer

        def forward(self, y, v, x, fctx):
            calls.append(("post", self.layer, tuple(y.shape), tuple(v.shape), tuple(x.shape), fctx))
            return y

    ns["QK_TRANSFORMS"].append(qk_hook)
    ns["ATTENTION_POST"].append(PostHook)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    attn = ns["CausalSelfAttention"](h, 3)
    torch.nn.init.normal_(attn.proj.weight, std=0.1)
    x = torch.randn(2, 5, 64)
    y = attn(x)
    assert calls == [("qk", 3, (2, 4, 5, 16), (2, 2, 5, 16)), ("post", 3, (2, 5, 4, 16), (2, 5, 2, 16), (2, 5, 64), None)]

    def heads(t, n):  # (B, T, n * 16) -> (B, T, n, 16)
        return t.view(2, 5, n, 16)

    q, k, v = heads(attn.c_q(x), 4), heads(attn.c_k(x), 2), heads(attn.c_v(x), 2)
    q = (attn.rotary(F.rms_norm(q, (16,))) * 1.5).transpose(1, 2)  # (B, H, T, D)
    k = attn.rotary(F.rms_norm(k, (16,))).transpose(1, 2).repeat_interleave(2, dim=1)
    v = v.transpose(1, 2).repeat_interleave(2, dim=1)
    scores = (q @ k.transpose(-1, -2)) / 4.0 + torch.full((5, 5), float("-inf")).triu(1)
    ref = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 64) @ attn.proj.weight.T
    assert torch.allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("tie", ["1", "0"])
def test_mean_loss_equals_the_mean_of_per_token_nll(tie, tiny_overrides):
    ns = load_program(overrides={**tiny_overrides, "TIE_EMBEDDINGS": tie})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    for p in model.parameters():  # leave the zero init so that the output depends on every layer
        torch.nn.init.normal_(p, std=0.05)
    ids = torch.randint(0, h.vocab_size, (3, 16))
    targets = torch.randint(0, h.vocab_size, (3, 16))
    nll = model(ids, targets, reduction="none")
    assert nll.shape == (3, 16) and nll.dtype == torch.float32
    assert torch.allclose(model(ids, targets), nll.mean(), atol=1e-6)
    # by hand: rms_norm -> blocks -> rms_norm -> head -> 30 tanh(z / 30) -> cross-entropy
    x = F.rms_norm(model.tok_emb(ids), (64,))
    x = F.rms_norm(model.stack(x, x, ns["ForwardContext"](ids, x, (), model.value_hooks)), (64,))
    logits = x @ (model.tok_emb.weight if tie == "1" else model.lm_head.weight).T
    logits = 30 * torch.tanh(logits / 30)
    ref = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(3, 16)
    assert torch.allclose(nll, ref, atol=1e-5)
    assert (model.lm_head is None) == (tie == "1")
