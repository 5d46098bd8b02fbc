"""One test per hook: a plugin fills the hook point and the run-time core really uses what it provides.

Model hooks are checked on a loaded program (``golfc.testing.load_program``) with a forward pass; the
training and artifact hooks are checked on one real run of an emitted ``train_gpt.py`` whose probe
plugin fills every such slot and reports, at exit, how often each was called.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import torch

from golfc.build import build_submission
from golfc.engine import resolve
from golfc.errors import RecipeError
from golfc.recipe import Recipe
from golfc.testing import TINY_RUN_ENV, load_program, slot_plugin

TINY_MODEL = {
    "NUM_LAYERS": "2",
    "MODEL_DIM": "32",
    "NUM_HEADS": "4",
    "NUM_KV_HEADS": "2",
    "VOCAB_SIZE": "64",
    "DEVICE": "cpu",
}


def forward_loss(ns: dict) -> torch.Tensor:
    """Build the GPT of a loaded program and run one loss computation on random tokens."""
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    ids = torch.randint(0, h.vocab_size, (2, 16))
    return model(ids, torch.roll(ids, -1, dims=1))


# ---------------------------------------------------------------------------------------------- setup
def test_hook_add_hparams(plugin_dir):
    build = """
from golfc import hookimpl

@hookimpl
def golfc_add_hparams(hp):
    hp.int("KNOB_COUNT", 3, "a count")
    hp.float("KNOB_RATE", 0.5, "a rate")
    hp.bool("KNOB_ON", False, "a switch")
    hp.str("KNOB_NAME", "x", "a name")
"""
    plugin_dir.add("knobs", build)
    ns = load_program(("knobs",), {"KNOB_RATE": "0.25"}, env={"KNOB_ON": "1"}, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    assert (h.knob_count, h.knob_rate, h.knob_on, h.knob_name) == (3, 0.25, True, "x")
    assert h.num_layers == 9 and h.matrix_lr == 0.04  # the baseline's defaults are all there


def test_hook_validate_recipe(plugin_dir):
    build = """
from golfc import hookimpl
from golfc.errors import RecipeError

@hookimpl
def golfc_validate_recipe(recipe, hparams, active):
    if "relu2_mlp" in active and hparams["MLP_MULT"].default > 4:
        raise RecipeError("wide needs MLP_MULT <= 4")
"""
    plugin_dir.add("wide", build)
    with pytest.raises(RecipeError, match="wide needs MLP_MULT <= 4"):
        resolve(Recipe(plugins=("wide",), overrides={"MLP_MULT": "8"}), plugins_dir=plugin_dir.root)
    resolve(Recipe(plugins=("wide",), overrides={"MLP_MULT": "3"}), plugins_dir=plugin_dir.root)
    # the slots are filled by then: a validator sees who fills each (bindings) and may refuse a filler
    build = """
from golfc import hookimpl
from golfc.errors import RecipeError

@hookimpl
def golfc_validate_recipe(bindings):
    filler = bindings["position_encoding"][0].plugin
    if filler != "rope":
        raise RecipeError(f"needs_rope: position_encoding is filled by {filler}")
"""
    plugin_dir.add("needs_rope", build)
    resolve(Recipe(plugins=("needs_rope",)), plugins_dir=plugin_dir.root)
    with pytest.raises(RecipeError, match="needs_rope: position_encoding is filled by ntk_rope"):
        resolve(Recipe(plugins=("needs_rope", "ntk_rope")), plugins_dir=plugin_dir.root)


# ---------------------------------------------------------------------------------------------- model
def test_hook_attention_kernel(plugin_dir):
    runtime = """
import torch
KERNEL_SHAPES = []

def manual_attention(q, k, v, h, layer, fctx=None):
    KERNEL_SHAPES.append((tuple(q.shape), tuple(k.shape), layer, fctx.layer))
    rep = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    att = (q @ k.transpose(-1, -2)) / q.size(-1) ** 0.5
    mask = torch.ones(q.size(2), q.size(2), dtype=torch.bool).tril()
    return att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
"""
    plugin_dir.add("manual", slot_plugin("golfc_attention_kernel", "manual_runtime", "manual_attention"), runtime)
    ns = load_program(("manual",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    base = load_program(env=TINY_MODEL)
    loss, reference = forward_loss(ns), forward_loss(base)
    # (B, H, T, D) and (B, Hkv, T, D), the layer it serves, and the forward's context (fctx.layer)
    assert ns["KERNEL_SHAPES"] == [((2, 4, 16, 8), (2, 2, 16, 8), 0, 0), ((2, 4, 16, 8), (2, 2, 16, 8), 1, 1)]
    assert torch.allclose(loss, reference, atol=1e-4)  # the same function as the default SDPA kernel


def test_hook_position_encoding(plugin_dir):
    runtime = """
import torch
from torch import nn

POS_SEEN = []

class NoPositions(nn.Module):
    def __init__(self, head_dim, h, layer):
        super().__init__()
        self.layer = layer
        self.grown = 0

    def grow_positions(self, seq_len):
        self.grown = max(self.grown, seq_len)

    def forward(self, x):
        POS_SEEN.append((self.layer, tuple(x.shape)))
        return x
"""
    plugin_dir.add("nopos", slot_plugin("golfc_position_encoding", "nopos_runtime", "NoPositions"), runtime)
    ns = load_program(("nopos",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    forward_loss(ns)
    assert ns["PositionEncoding"] is ns["NoPositions"]
    assert ns["POS_SEEN"] == [(0, (2, 16, 4, 8)), (0, (2, 16, 2, 8)), (1, (2, 16, 4, 8)), (1, (2, 16, 2, 8))]  # q, k
    model = ns["GPT"](ns["Hyperparameters"]())
    ns["ensure_positions"](model, 99)  # plain_eval's helper: every position module grows
    assert [m.grown for m in model.modules() if isinstance(m, ns["NoPositions"])] == [99, 99]


def test_hook_qk_transform(plugin_dir):
    runtime = """
QK_SEEN = []

def zero_queries(q, k, layer, h):
    QK_SEEN.append((layer, tuple(q.shape), tuple(k.shape)))
    return q * 0, k
"""
    plugin_dir.add("zq", slot_plugin("golfc_qk_transform", "zq_runtime", "zero_queries"), runtime)
    ns = load_program(("zq",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    forward_loss(ns)
    assert ns["QK_TRANSFORMS"] == [ns["zero_queries"]]
    assert ns["QK_SEEN"] == [(0, (2, 4, 16, 8), (2, 2, 16, 8)), (1, (2, 4, 16, 8), (2, 2, 16, 8))]


def test_hook_attention_post(plugin_dir):
    runtime = """
import torch
from torch import nn

POST_SEEN = []

class RecordPost(nn.Module):
    def __init__(self, h, layer):
        super().__init__()
        self.layer = layer
        self.scale = nn.Parameter(torch.ones(h.num_heads))  # a per-layer parameter, in the state dict

    def forward(self, y, v, x, fctx):
        POST_SEEN.append((self.layer, fctx.layer, tuple(y.shape), tuple(v.shape), tuple(x.shape)))
        return y * self.scale[:, None]
"""
    plugin_dir.add("post", slot_plugin("golfc_attention_post", "post_runtime", "RecordPost"), runtime)
    ns = load_program(("post",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    forward_loss(ns)
    assert ns["POST_SEEN"] == [
        (0, 0, (2, 16, 4, 8), (2, 16, 2, 8), (2, 16, 32)),
        (1, 1, (2, 16, 4, 8), (2, 16, 2, 8), (2, 16, 32)),
    ]  # one module per layer; (B,T,H,D), (B,T,Hkv,D), the attention's input (B,T,d), the forward's context
    model = ns["GPT"](ns["Hyperparameters"]())
    assert [k for k in model.state_dict() if ".post." in k] == [
        f"stack.blocks.{i}.attn.post.0.scale" for i in range(2)
    ]


def test_hook_mlp(plugin_dir):
    runtime = """
from torch import nn

SEEN = []

class IdentityishMLP(nn.Module):
    def __init__(self, h, layer):
        super().__init__()
        self.layer = layer
        self.fc = CastedLinear(h.model_dim, h.model_dim)

    def forward(self, x, fctx=None):
        SEEN.append((self.layer, fctx.layer, tuple(fctx.ids.shape)))  # the block hands the forward's context on
        return self.fc(x)
"""
    plugin_dir.add("idmlp", slot_plugin("golfc_mlp", "idmlp_runtime", "IdentityishMLP"), runtime)
    ns = load_program(("idmlp",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    model = ns["GPT"](ns["Hyperparameters"]())
    mlps = [m for m in model.modules() if type(m).__name__ == "IdentityishMLP"]
    assert [m.layer for m in mlps] == [0, 1]
    ns["SEEN"].clear()
    assert torch.isfinite(forward_loss(ns))
    assert [(mlp_layer, ctx_layer) for mlp_layer, ctx_layer, _ in ns["SEEN"]] == [(0, 0), (1, 1)]


def test_hook_embedding_extras(plugin_dir):
    runtime = """
from torch import nn

class CountIds(nn.Module):
    calls = []

    def __init__(self, h):
        super().__init__()

    def forward(self, ids, x):
        CountIds.calls.append((tuple(ids.shape), tuple(x.shape)))
        return x
"""
    plugin_dir.add("countids", slot_plugin("golfc_embedding_extras", "countids_runtime", "CountIds"), runtime)
    ns = load_program(("countids",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    forward_loss(ns)
    assert ns["CountIds"].calls == [((2, 16), (2, 16, 32))]


def test_hook_embedding_pre_norm(plugin_dir):
    runtime = """
import torch
from torch import nn

class AddOne(nn.Module):
    seen = []

    def __init__(self, h):
        super().__init__()

    def forward(self, ids, e):
        AddOne.seen.append(e.detach().clone())
        return e + 1.0
"""
    plugin_dir.add("addone", slot_plugin("golfc_embedding_pre_norm", "addone_runtime", "AddOne"), runtime)
    ns = load_program(("addone",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    into_stack = {}
    model.stack.register_forward_pre_hook(lambda m, args: into_stack.update(x=args[0]))
    ids = torch.randint(0, 64, (2, 16))
    model(ids, ids)
    # the module sees tok_emb(ids) itself, and the norm is applied to what it returns
    assert torch.equal(ns["AddOne"].seen[0], model.tok_emb(ids))
    torch.testing.assert_close(into_stack["x"], torch.nn.functional.rms_norm(model.tok_emb(ids) + 1.0, (32,)))


def test_hook_eval_windows(plugin_dir):
    runtime = """
PLANS = []

def half_windows(val_tokens, h, ctx):
    window = h.train_seq_len // 2
    plan = EvalWindows(window, sliding_windows(val_tokens.numel() - 1, window, window // 2), 3, pad=True)
    PLANS.append(plan)
    return plan
"""
    plugin_dir.add("half", slot_plugin("golfc_eval_windows", "half_runtime", "half_windows"), runtime)
    ns = load_program(("half",), env={**TINY_MODEL, "TRAIN_SEQ_LEN": "16"}, plugins_dir=plugin_dir.root)
    assert ns["eval_windows"] is ns["half_windows"]
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    ctx.luts = (torch.ones(64, dtype=torch.int16), torch.zeros(64, dtype=torch.bool), torch.zeros(64, dtype=torch.bool))
    val = torch.randint(0, 64, (100,), dtype=torch.int32)
    scores = ns["score_validation"](model, val, h, ctx, False)  # the default scorer scores the plugin's windows
    assert len(ns["PLANS"]) == 1 and ns["PLANS"][0].window == h.train_seq_len // 2
    assert scores.positions.tolist() == list(range(1, 100))


def test_hook_block(plugin_dir):
    runtime = """
from torch import nn

BLOCK_SEEN = []

class PlainBlock(nn.Module):
    def __init__(self, h, layer):
        super().__init__()
        self.layer = layer
        self.attn = CausalSelfAttention(h, layer)
        self.mlp = MLP(h, layer)

    def forward(self, x, x0, fctx):
        BLOCK_SEEN.append((self.layer, fctx.layer, fctx.depth, fctx.x0 is x0, tuple(fctx.ids.shape)))
        x = x + self.attn(rms_norm(x), fctx)
        return x + self.mlp(rms_norm(x))
"""
    plugin_dir.add("plain", slot_plugin("golfc_block", "plain_runtime", "PlainBlock"), runtime)
    ns = load_program(("plain",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    model = ns["GPT"](ns["Hyperparameters"]())
    names = [name for name, _ in model.named_parameters()]
    assert "stack.blocks.1.attn.c_q.weight" in names and "stack.skip_weights" in names  # the default mixer stays
    assert not any("resid_mix" in name for name in names)
    assert torch.isfinite(forward_loss(ns))
    assert ns["BLOCK_SEEN"] == [(0, 0, 0, True, (2, 16)), (1, 1, 1, True, (2, 16))]


def test_hook_block_norm(plugin_dir):
    runtime = """
NORM_SEEN = []

def halved_norm(x, layer, h, fctx):
    NORM_SEEN.append((layer, fctx.layer, tuple(x.shape)))
    return rms_norm(x) * 0.5
"""
    plugin_dir.add("half", slot_plugin("golfc_block_norm", "half_runtime", "halved_norm"), runtime)
    ns = load_program(("half",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    assert torch.isfinite(forward_loss(ns))
    assert ns["block_norm"] is ns["halved_norm"]
    # each block's attention input, then its MLP input
    assert ns["NORM_SEEN"] == [(0, 0, (2, 16, 32))] * 2 + [(1, 1, (2, 16, 32))] * 2
    # every block plugin of the catalogue feeds its attention and MLP through block_norm (none calls rms_norm
    # itself, which would drop ln_scale silently)
    from golfc.engine import describe_plugin
    from golfc.plugins import DEFAULT_PLUGINS, discover

    blocks = [name for name, entry in discover(None).items() if "block" in describe_plugin(name, entry)["slots"]]
    assert "unet_blocks" in blocks
    for name in blocks:
        plugins = ("half",) if name in DEFAULT_PLUGINS else (name, "half")  # naming a default: it would claim the slot
        ns = load_program(plugins, env=TINY_MODEL, plugins_dir=plugin_dir.root)
        assert torch.isfinite(forward_loss(ns))
        per_layer = [sum(1 for seen in ns["NORM_SEEN"] if seen[0] == layer) for layer in range(2)]
        assert min(per_layer) >= 2, f"block plugin {name} calls block_norm {per_layer} times per layer"


def test_hook_layer_schedule(plugin_dir):
    runtime = """
def recurrent_schedule(h, phases):
    return (0, 1, 0, 1) if "recur" in phases else (1, 0)
"""
    plugin_dir.add("recur", slot_plugin("golfc_layer_schedule", "recur_runtime", "recurrent_schedule"), runtime)
    ns = load_program(("recur",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    calls = []
    for i, block in enumerate(model.stack.blocks):
        block.register_forward_pre_hook(lambda m, args, i=i: calls.append((i, args[2].depth, args[2].schedule)))
    ids = torch.randint(0, 64, (2, 16))
    model(ids, ids)
    assert calls == [(1, 0, (1, 0)), (0, 1, (1, 0))]  # the schedule's order, each block told its position
    calls.clear()
    model.phases = ("recur",)  # a run phase switched on: the next forward runs the other schedule
    model(ids, ids)
    assert [c[:2] for c in calls] == [(0, 0), (1, 1), (0, 2), (1, 3)] and calls[0][2] == (0, 1, 0, 1)


def test_hook_skip_mixer(plugin_dir):
    runtime = """
import torch
from torch import nn

class GatedSkip:
    calls = []

    def __init__(self, h, stack):
        stack.skip_gate = nn.Parameter(torch.zeros(h.model_dim))

    def before(self, stack, x, depth, fctx):
        GatedSkip.calls.append(("before", depth))
        if depth == 1:
            x = x + torch.sigmoid(stack.skip_gate).to(x.dtype) * fctx.cache.pop("first")
        return x

    def after(self, stack, x, depth, fctx):
        GatedSkip.calls.append(("after", depth))
        if depth == 0:
            fctx.cache["first"] = x
        return x
"""
    plugin_dir.add("gated", slot_plugin("golfc_skip_mixer", "gated_runtime", "GatedSkip"), runtime)
    ns = load_program(("gated",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    model = ns["GPT"](ns["Hyperparameters"]())
    names = list(model.state_dict())
    assert "stack.skip_gate" in names and "stack.skip_weights" not in names
    assert torch.isfinite(forward_loss(ns))
    assert ns["GatedSkip"].calls == [("before", 0), ("after", 0), ("before", 1), ("after", 1)]


def test_hook_qkv_pre_rope(plugin_dir):
    runtime = """
PRE_SEEN = []

def double_queries(q, k, v, layer, h, fctx):
    PRE_SEEN.append((layer, tuple(q.shape), tuple(k.shape), tuple(v.shape), fctx.layer))
    return q * 2.0, k, v * 0.0
"""
    plugin_dir.add("pre", slot_plugin("golfc_qkv_pre_rope", "pre_runtime", "double_queries"), runtime)
    ns = load_program(("pre",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    attn = model.stack.blocks[0].attn
    into_rope = []
    attn.rotary.register_forward_pre_hook(lambda m, args: into_rope.append(args[0]))
    x = torch.randn(2, 16, 32)
    normed_q = torch.nn.functional.rms_norm(attn.c_q(x).view(2, 16, 4, 8), (8,))
    fctx = ns["ForwardContext"](None, x, (), [])
    fctx.layer = 0
    y = attn(x, fctx)
    torch.testing.assert_close(into_rope[0], 2.0 * normed_q)  # RoPE rotates what the transform returned
    assert ns["PRE_SEEN"] == [(0, (2, 16, 4, 8), (2, 16, 2, 8), (2, 16, 2, 8), 0)]
    assert torch.equal(y, torch.zeros_like(y))  # v zeroed before the kernel: no output


def test_hook_value_hook(plugin_dir):
    runtime = """
import torch
from torch import nn

class ValueEmbedding(nn.Module):
    seen = []

    def __init__(self, h):
        super().__init__()
        self.kv_dim = h.num_kv_heads * (h.model_dim // h.num_heads)
        self.table = nn.Embedding(h.vocab_size, self.kv_dim)
        self.gate = nn.Parameter(torch.zeros(h.num_layers))

    def forward(self, v, layer, fctx):
        ValueEmbedding.seen.append((layer, tuple(v.shape)))
        return v + self.gate[layer].to(v.dtype) * self.table(fctx.ids).view_as(v).to(v.dtype)
"""
    plugin_dir.add("ve", slot_plugin("golfc_value_hook", "ve_runtime", "ValueEmbedding"), runtime)
    ns = load_program(("ve",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    base = load_program(env=TINY_MODEL)
    torch.manual_seed(0)
    model, reference = ns["GPT"](ns["Hyperparameters"]()), base["GPT"](base["Hyperparameters"]())
    missing = model.load_state_dict(reference.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["value_hooks.0.gate", "value_hooks.0.table.weight"]
    ids = torch.randint(0, 64, (2, 16))
    assert torch.equal(model(ids, ids), reference(ids, ids))  # zero gates: the baseline's function
    assert ns["ValueEmbedding"].seen == [(0, (2, 16, 2, 8)), (1, (2, 16, 2, 8))]
    for name, p in model.named_parameters():
        if name.endswith("proj.weight") or name.endswith("gate"):
            torch.nn.init.normal_(p, std=0.3)
    before = model(ids, ids)
    with torch.no_grad():
        model.value_hooks[0].table.weight.add_(1.0)
    assert not torch.equal(before, model(ids, ids))  # the values (through fctx.ids) change the output


def test_hook_loss(plugin_dir):
    """GPT.forward hands the hidden state to the loss slot for both reductions; model.head gives the logits before
    the softcap (a fused kernel applies it); the baseline (no loss plugin) keeps its own cross-entropy."""
    runtime = """
import torch
import torch.nn.functional as F

LOSS_SEEN = []

def label_smoothed_loss(model, hidden, targets, reduction):
    LOSS_SEEN.append((tuple(hidden.shape), reduction))
    z = model.head(hidden)
    logits = model.logit_softcap * torch.tanh(z / model.logit_softcap)
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction, label_smoothing=0.1)
    return loss.view_as(targets) if reduction == "none" else loss
"""
    plugin_dir.add("smooth", slot_plugin("golfc_loss", "smooth_runtime", "label_smoothed_loss"), runtime)
    ns = load_program(("smooth",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    base = load_program(env=TINY_MODEL)
    assert base["loss_from_hidden"] is None and ns["loss_from_hidden"] is ns["label_smoothed_loss"]
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    reference = base["GPT"](base["Hyperparameters"]())
    reference.load_state_dict(model.state_dict())
    ids = torch.randint(0, 64, (2, 16))
    targets = torch.roll(ids, -1, dims=1)
    hidden = model.hidden(ids)
    torch.testing.assert_close(model.logits(hidden), 30.0 * torch.tanh(model.head(hidden) / 30.0))
    smoothed, per_token = model(ids, targets), model(ids, targets, reduction="none")
    assert ns["LOSS_SEEN"] == [((2, 16, 32), "mean"), ((2, 16, 32), "none")]
    assert per_token.shape == (2, 16) and torch.allclose(per_token.mean(), smoothed)
    plain = reference(ids, targets)
    expected = torch.nn.functional.cross_entropy(reference.logits(hidden).float().flatten(0, 1), targets.flatten())
    assert torch.equal(plain, expected) and not torch.allclose(smoothed, plain)  # the plugin's loss is the one used


# ---------------------------------------------------------------------------------------------- training and artifact
PROBE_BUILD = """
from golfc import Impl, hookimpl

M = "probe_runtime"

@hookimpl
def golfc_optimizer():
    return Impl(module=M, symbols="probe_optimizers")

@hookimpl
def golfc_schedule():
    return Impl(module=M, symbols="probe_schedule")

@hookimpl
def golfc_weight_averaging():
    return Impl(module=M, symbols="ProbeAverager")

@hookimpl
def golfc_train_quantization():
    return Impl(module=M, symbols="probe_train_quant")

@hookimpl
def golfc_quantizer():
    return Impl(module=M, symbols={"quantize_model": "probe_quantize", "dequantize_state_dict": "probe_dequantize",
                                   "QUANT_LABEL": "PROBE_QUANT_LABEL"})

@hookimpl
def golfc_compressor():
    return Impl(module=M, symbols={"compress_bytes": "probe_compress", "decompress_bytes": "probe_decompress",
                                   "COMPRESS_LABEL": "PROBE_COMPRESS_LABEL"})

@hookimpl
def golfc_data_loader():
    return Impl(module=M, symbols="ProbeLoader", requires=("golfc_plugins.token_stream_loader.runtime",))

@hookimpl
def golfc_eval_adapter():
    return Impl(module=M, symbols="probe_score", requires=("golfc_plugins.plain_eval.runtime",))
"""

PROBE_RUNTIME = """
import atexit
import io
import json
import lzma

import torch

PROBE_CALLS = {}
PROBE_QUANT_LABEL = "fp16"
PROBE_COMPRESS_LABEL = "lzma"


def probe_note(name):
    PROBE_CALLS[name] = PROBE_CALLS.get(name, 0) + 1


atexit.register(lambda: print("probe_calls:" + json.dumps(PROBE_CALLS, sort_keys=True)))


def probe_optimizers(model, h, ctx):
    probe_note("optimizer")
    return [torch.optim.SGD([{"params": list(model.parameters()), "lr": 0.05, "base_lr": 0.05}], lr=0.05)]


def probe_schedule(optimizers, step, elapsed_ms, h):
    probe_note("schedule")
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * 0.5
    return 0.5


class ProbeAverager:
    def __init__(self, model, h):
        probe_note("averager_init")

    def update(self, model, step, lr_mul):
        probe_note("averager_update")

    def apply(self, model):
        probe_note("averager_apply")


def probe_train_quant(model, step, lr_mul, h):
    probe_note("train_quant")


def probe_quantize(model, state_dict, h, ctx, calibration):
    probe_note("quantize")
    obj = {k: (v.half() if v.is_floating_point() else v) for k, v in state_dict.items()}
    dtypes = {k: str(v.dtype) for k, v in state_dict.items()}
    payload = sum(v.numel() * v.element_size() for v in obj.values())
    raw = sum(v.numel() * v.element_size() for v in state_dict.values())
    n = sum(v.numel() for v in state_dict.values())
    return {"tensors": obj, "dtypes": dtypes}, {"param_count": n, "payload_bytes": payload, "baseline_tensor_bytes": raw}


def probe_dequantize(obj):
    probe_note("dequantize")
    return {k: v.to(getattr(torch, obj["dtypes"][k].split(".")[-1])) for k, v in obj["tensors"].items()}


def probe_compress(raw):
    probe_note("compress")
    return lzma.compress(raw)


def probe_decompress(blob):
    probe_note("decompress")
    return lzma.decompress(blob)


class ProbeLoader(TokenStreamLoader):
    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        probe_note("next_batch")
        return super().next_batch(global_tokens, seq_len, grad_accum_steps)


def probe_score(model, val_tokens, h, ctx, final):
    probe_note("score")
    probe_note("final" if final else "not_final")
    scores = score_plain_windows(model, val_tokens, h, ctx)
    assert scores.positions.numel() == val_tokens.numel() - 1
    return scores
"""


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, tiny_dataset):
    """One real CPU run of an emitted train_gpt.py whose probe plugin fills every training/artifact slot."""
    root = tmp_path_factory.mktemp("probe")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "probe.py").write_text(PROBE_BUILD)
    (plugins / "probe_runtime.py").write_text(PROBE_RUNTIME)
    out = root / "build"
    build_submission(("probe",), {}, out, plugins_dir=plugins)
    env = dict(os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, ITERATIONS="4", RUN_ID="probe")
    result = subprocess.run(
        [sys.executable, "train_gpt.py"], cwd=out, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("probe_calls:"))[12:])
    return result.stdout, calls, out



def test_hook_optimizer(probe_run):
    _, calls, _ = probe_run
    assert calls["optimizer"] == 1


def test_hook_schedule(probe_run):
    _, calls, _ = probe_run
    assert calls["schedule"] == 2 + 4  # warmup steps + timed steps


def test_hook_weight_averaging(probe_run):
    _, calls, _ = probe_run
    assert (calls["averager_init"], calls["averager_update"], calls["averager_apply"]) == (1, 4, 1)


def test_hook_train_quantization(probe_run):
    _, calls, _ = probe_run
    assert calls["train_quant"] >= 4


def test_hook_quantizer(probe_run):
    stdout, calls, out = probe_run
    assert calls["quantize"] == 1 and calls["dequantize"] == 1
    assert "final_fp16_lzma_roundtrip_exact val_loss:" in stdout
    assert (out / "final_model.fp16.ptz").is_file()


def test_hook_compressor(probe_run):
    stdout, calls, _ = probe_run
    assert calls["compress"] == 1 and calls["decompress"] == 1
    assert "Serialized model fp16+lzma:" in stdout


def test_hook_data_loader(probe_run):
    _, calls, _ = probe_run
    assert calls["next_batch"] == (2 + 4) * 8  # every micro-batch of every step comes from the plugin's loader


def test_hook_data_loader_loss_weight():
    """A loader's loss_weight scales its rank's loss before the backward (mixed_seqlen's token weighting);
    a loader without one trains exactly as before."""
    ns = load_program(overrides={"DEVICE": "cpu"}, env={**TINY_MODEL, "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256",
                                                       "WARMDOWN_ITERS": "0"})
    h = ns["Hyperparameters"]()
    ids = torch.randint(0, h.vocab_size, (2, 17), generator=torch.Generator().manual_seed(1))

    class Loader:
        def __init__(self, weight=None):
            if weight is not None:
                self.loss_weight = weight

        def next_batch(self, global_tokens, seq_len, grad_accum_steps):
            return ids[:, :-1], ids[:, 1:]

    def update(loader):
        torch.manual_seed(0)
        model = ns["GPT"](h)
        before = [p.detach().clone() for p in model.parameters()]
        run = ns["Run"](h, ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8), model, model)
        run.optimizers = [torch.optim.SGD([{"params": list(model.parameters()), "base_lr": 1.0}], lr=1.0)]
        run.params = list(model.parameters())
        ns["train_step"](run, 0, 0.0, loader, None)
        return [p.detach() - b for p, b in zip(model.parameters(), before)]

    plain, unit, half = update(Loader()), update(Loader(1.0)), update(Loader(0.5))
    assert all(torch.equal(a, b) for a, b in zip(plain, unit))
    assert any(d.abs().sum() > 0 for d in plain)
    for d_half, d_plain in zip(half, plain):
        torch.testing.assert_close(d_half, 0.5 * d_plain, atol=1e-7, rtol=1e-5)


def test_hook_eval_adapter(probe_run):
    stdout, calls, _ = probe_run
    assert calls["score"] == 2  # the final evaluation and the roundtrip evaluation
    assert calls["final"] == 1 and calls["not_final"] == 1  # only the artifact's (roundtrip) evaluation is final
    assert stdout.count("val_bpb:") >= 2


# ---------------------------------------------------------------------------------------------- optimizer and run events
def test_hook_muon_transform(plugin_dir):
    runtime = """
import torch

class FreezeAndDecay:
    def __init__(self):
        self.calls = []

    def setup(self, opt):
        self.calls.append("setup")
        self.seen = (opt.h.muon_backend_steps, [g["name"] for g in opt.adam.param_groups])  # knobs, Adam beside it

    def before_update(self, params, group, opt):
        self.calls.append(("before_update", len(params)))
        torch._foreach_mul_(params, 0.5)  # a decoupled decay, visible in the weights

    def before_orthogonalise(self, G, params, transposed, group, opt):
        self.calls.append(("before", tuple(G.shape), len(params), tuple(transposed)))
        opt.state[params[0]]["seen"] = opt.state[params[0]].get("seen", 0) + 1  # state saved with the optimizer
        return G

    def orthogonalise(self, G, steps):
        self.calls.append(("orthogonalise", steps))
        return (G / (G.norm(dim=(1, 2), keepdim=True) + 1e-7)).bfloat16()  # one normalisation, no iteration

    def after_orthogonalise(self, X, params, transposed, group, opt):
        self.calls.append(("after", tuple(X.shape), X.dtype))
        return X * 0  # no orthogonalised update at all

FREEZE_AND_DECAY = FreezeAndDecay()
"""
    plugin_dir.add("toy", slot_plugin("golfc_muon_transform", "toy_runtime", "FREEZE_AND_DECAY"), runtime)
    ns = load_program(("toy",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    _, muon = ns["build_optimizers"](model, h, ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8))
    matrices = [p for g in muon.param_groups for p in g["params"]]
    before = [p.detach().clone() for p in matrices]
    forward_loss_of(model).backward()
    muon.step()
    calls = ns["FREEZE_AND_DECAY"].calls
    assert ns["FREEZE_AND_DECAY"].seen == (h.muon_backend_steps, ["embed", "scalar"])
    assert calls[0] == "setup" and calls[1] == ("before_update", len(matrices))
    stacks = [c for c in calls if c[0] == "before"]
    assert sum(c[2] for c in stacks) == len(matrices) and all(c[1][1] <= c[1][2] for c in stacks)  # wide stacks
    assert [c[0] for c in calls[2:]] == ["before", "orthogonalise", "after"] * len(stacks)
    assert calls[3] == ("orthogonalise", h.muon_backend_steps) and calls[4][2] is torch.bfloat16
    for p, p0 in zip(matrices, before):
        assert torch.equal(p, p0 * 0.5)  # decayed, then a zero update
    assert any("seen" in s for s in muon.state_dict()["state"].values())


def test_hook_grad_average(plugin_dir, tmp_path):
    runtime = """
AVERAGED = []

def record_gradients(params, ctx):
    AVERAGED.append((len(params), sum(p.grad is not None for p in params), ctx.world_size))
"""
    plugin_dir.add("avg", slot_plugin("golfc_grad_average", "avg_runtime", "record_gradients"), runtime)
    ns = load_program(("avg",), env={**TINY_MODEL, "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256"},
                      plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    torch.manual_seed(0)
    run = ns["build_model"](h, ctx)
    ns["prepare_training"](run)
    ns["train_step"](run, 0, 0.0, RandomBatches(h.vocab_size))
    assert ns["AVERAGED"] == []  # one rank: nothing to average
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:  # a run that calls itself distributed (one gloo rank): after the backward the core calls the slot
        run.ctx.distributed = True
        ns["train_step"](run, 1, 0.0, RandomBatches(h.vocab_size))
    finally:
        torch.distributed.destroy_process_group()
    assert ns["AVERAGED"] == [(len(run.params), len(run.params), 1)]  # every gradient already there


class RandomBatches:
    """A loader of seeded random (x, y) batches (2, 16)."""

    def __init__(self, vocab: int) -> None:
        self.generator, self.vocab = torch.Generator().manual_seed(0), vocab

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = torch.randint(0, self.vocab, (2, seq_len + 1), generator=self.generator)
        return ids[:, :-1], ids[:, 1:]


def forward_loss_of(model) -> torch.Tensor:
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    return model(ids, torch.roll(ids, -1, dims=1))


EVENTS_RUNTIME = """
import torch

EVENT_LOG = []
COMPILES = [0]


class DoubleLayerEvents(RunEvents):
    phases = {"double": 0.5}

    def train_start(self, run):
        EVENT_LOG.append(("train_start", self.model.phases))

    def phase(self, model, name, on):
        EVENT_LOG.append(("phase", name, on, model.phases))

    def step(self, model, step, clock_ms, lr_mul):
        EVENT_LOG.append(("step", step, model.phases, COMPILES[0]))

    def before_export(self, model, ctx):
        EVENT_LOG.append(("before_export", model.phases))


def double_schedule(h, phases):
    return (0, 1, 1) if "double" in phases else (0, 1)


class EventsLoader:
    def __init__(self, h, ctx):
        self.generator = torch.Generator().manual_seed(3)
        self.vocab = h.vocab_size

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = torch.randint(0, self.vocab, (2, seq_len + 1), generator=self.generator)
        return ids[:, :-1], ids[:, 1:]
"""

EVENTS_BUILD = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_run_events():
    return Impl(module="events_runtime", symbols="DoubleLayerEvents")

@hookimpl
def golfc_layer_schedule():
    return Impl(module="events_runtime", symbols="double_schedule")

@hookimpl
def golfc_data_loader():
    return Impl(module="events_runtime", symbols="EventsLoader")
"""


def test_hook_run_events(plugin_dir):
    """A phase that changes the forward (a layer schedule that repeats a block): the compile warmup compiles
    both graphs and restores everything, the timed loop switches at half of ITERATIONS and compiles nothing."""
    plugin_dir.add("events", EVENTS_BUILD, EVENTS_RUNTIME)
    env = {**TINY_MODEL, "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256", "ITERATIONS": "4", "WARMUP_STEPS": "2",
           "VAL_LOSS_EVERY": "0", "MAX_WALLCLOCK_SECONDS": "0", "TRAIN_LOG_EVERY": "0"}
    ns = load_program(("events",), env=env, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    ctx.luts = (torch.ones(64, dtype=torch.int16), torch.zeros(64, dtype=torch.bool), torch.zeros(64, dtype=torch.bool))
    compiles = ns["COMPILES"]

    def counting_backend(gm, example_inputs):
        compiles[0] += 1
        return gm.forward

    torch.manual_seed(0)
    run = ns["build_model"](h, ctx)
    torch._dynamo.reset()
    run.model = torch.compile(run.base_model, backend=counting_backend, fullgraph=True, dynamic=False)
    ns["prepare_training"](run)
    initial = {k: v.clone() for k, v in run.base_model.state_dict().items()}
    ns["compile_warmup"](run)
    assert compiles[0] == 2  # one graph per phase state: () and ("double",)
    assert run.base_model.phases == ()
    for k, v in run.base_model.state_dict().items():
        assert torch.equal(v, initial[k]), k  # weights restored
    assert all(not opt.state for opt in run.optimizers)  # optimizer state restored (empty, as built)
    ns["train"](run, torch.randint(0, 64, (200,), dtype=torch.int32))
    log = ns["EVENT_LOG"]
    assert log[:2] == [("phase", "double", True, ("double",)), ("phase", "double", False, ())]  # the warmup
    assert log[2:] == [
        ("train_start", ()),
        ("step", 1, (), 2),
        ("step", 2, (), 2),
        ("phase", "double", True, ("double",)),  # step / ITERATIONS reached 0.5 before the third step
        ("step", 3, ("double",), 2),  # no compile inside the timed loop
        ("step", 4, ("double",), 2),
        ("before_export", ("double",)),
    ]



def test_eval_only_scores_with_every_declared_phase_on(plugin_dir, tiny_dataset, tmp_path, monkeypatch):
    """EVAL_ONLY rescoring of a saved artifact runs the graph a training run ends with: every phase switched on."""
    plugin_dir.add("events", EVENTS_BUILD, EVENTS_RUNTIME)
    monkeypatch.chdir(tmp_path)
    artifact = tmp_path / "saved.ptz"
    env = {**tiny_dataset.env(), **TINY_RUN_ENV, "EVAL_ONLY": str(artifact), "RUN_ID": "eval_only_phases"}
    ns = load_program(("events",), env=env, plugins_dir=plugin_dir.root)
    seen, stack_forward = [], ns["BlockStack"].forward

    def seen_forward(self, x, x0, fctx):  # the schedule each forward runs (the skip mixer's sizing calls aside)
        seen.append(fctx.phases)
        return stack_forward(self, x, x0, fctx)

    monkeypatch.setattr(ns["BlockStack"], "forward", seen_forward)
    ns["__golfc_source__"] = "# the program's source (logged at start-up)"
    h = ns["Hyperparameters"]()
    obj, _ = ns["quantize_state_dict_int8"](ns["GPT"](h).state_dict(), h)
    buf = io.BytesIO()
    torch.save(obj, buf)
    artifact.write_bytes(ns["compress_bytes"](buf.getvalue()))
    ns["main"]()
    assert ns["EVENT_LOG"] == [("phase", "double", True, ("double",))]
    assert seen and all(p == ("double",) for p in seen)


# ---------------------------------------------------------------------------------------------- artifact pipeline
def test_hook_weight_transform(plugin_dir):
    runtime = """
class HalfWeight(nn.Module):
    def __init__(self, linear):
        super().__init__()
        self.register_buffer("factor", torch.full((), 0.5), persistent=False)

    def forward(self, w):
        return w * self.factor
"""
    plugin_dir.add("halfw", slot_plugin("golfc_weight_transform", "halfw_runtime", "HalfWeight"), runtime)
    ns = load_program(("halfw",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    base = load_program((), env=TINY_MODEL)
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    lin = model.stack.blocks[0].attn.c_q
    assert isinstance(lin.weight_transform, ns["HalfWeight"])
    x = torch.randn(3, 32)
    torch.testing.assert_close(lin(x), x @ (0.5 * lin.weight).T)  # every CastedLinear multiplies the transformed weight
    plain = base["GPT"](base["Hyperparameters"]())
    assert plain.state_dict().keys() == model.state_dict().keys()  # the transform adds nothing to the artifact
    assert plain.stack.blocks[0].attn.c_q.weight_transform is None


def test_hook_calibration_source(plugin_dir):
    runtime = """
def constant_tokens(model, h, ctx, count):
    for i in range(count):
        yield torch.full((2, h.train_seq_len), i, dtype=torch.int64)
"""
    plugin_dir.add("consttok", slot_plugin("golfc_calibration_source", "consttok_runtime", "constant_tokens"), runtime)
    ns = load_program(("consttok",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    calibration = ns["Calibration"](None, h, None, 500.0)
    batches = list(calibration.batches(3))
    assert [int(x[0, 0]) for x in batches] == [0, 1, 2]
    assert calibration.source == "constant_tokens" and calibration.count == 3
    assert calibration.last_read_ms >= 500.0  # on the training clock, which export continues


def test_hook_quant_stages(plugin_dir):
    runtime = """
class KeepAttention:
    def plan(self, name, t, bits, h):
        return 16 if ".attn." in name else bits

    def clip(self, name, w, qmax, h):
        return w.abs().amax(dim=1)  # max-abs clip instead of the percentile


KEEP_ATTENTION = KeepAttention()
"""
    plugin_dir.add("keepattn", slot_plugin("golfc_quant_stages", "keepattn_runtime", "KEEP_ATTENTION"), runtime)
    env = {**TINY_MODEL, "QUANT_KEEP_FLOAT_NUMEL": "0"}
    ns = load_program(("int6", "keepattn"), env=env, plugins_dir=plugin_dir.root)
    assert ns["QUANT_STAGES"] == [ns["KEEP_ATTENTION"]]
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    state = ns["GPT"](h).state_dict()
    state["tok_emb.weight"] = torch.randn(64, 32)
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    assert not any(".attn." in name for name in obj["q"]) and any(".attn." in name for name in obj["keep"])
    w = state["tok_emb.weight"]
    assert torch.equal(obj["scale"]["tok_emb.weight"], (w.abs().amax(dim=1) / 127).half())  # the stage's clip, int8


def test_hook_budget_fitter(plugin_dir, tmp_path, monkeypatch):
    runtime = """
FITTED = []


def drop_embedding(obj, total_bytes, h):
    FITTED.append(total_bytes(obj))
    obj["quantized"]["tok_emb.weight"].zero_()
    return obj
"""
    plugin_dir.add("dropemb", slot_plugin("golfc_budget_fitter", "dropemb_runtime", "drop_embedding"), runtime)
    env = {**TINY_MODEL, "MODEL_DIM": "256", "VOCAB_SIZE": "1024", "NUM_HEADS": "4"}
    ns = load_program(("dropemb",), env=env, plugins_dir=plugin_dir.root)
    from golfc.testing import cpu_context

    torch.manual_seed(0)
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h)
    with torch.no_grad():
        model.tok_emb.weight.normal_(0, 1.0)  # incompressible: the fitter's zeros make the difference
    monkeypatch.setitem(ns, "program_source", lambda: "")
    ns["__file__"] = __file__
    ns["ARTIFACT_BUDGET_BYTES"] = 700_000  # over with the embedding (~900 KB), under without it (~650 KB)
    monkeypatch.chdir(tmp_path)
    artifact = ns["export_artifact"](model, h, cpu_context(ns, vocab=1024))
    assert len(ns["FITTED"]) == 1 and ns["FITTED"][0] > 700_000
    assert (tmp_path / artifact).stat().st_size + os.path.getsize(__file__) <= 700_000
