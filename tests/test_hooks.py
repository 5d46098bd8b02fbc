"""One test per hook: a plugin fills the hook point and the run-time core really uses what it provides.

Model hooks are checked on a loaded program (``golfc.testing.load_program``) with a forward pass; the
training and artifact hooks are checked on one real run of an emitted ``train_gpt.py`` whose probe
plugin fills every such slot and reports, at exit, how often each was called.
"""

from __future__ import annotations

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


# ---------------------------------------------------------------------------------------------- model
def test_hook_attention_kernel(plugin_dir):
    runtime = """
import torch
KERNEL_SHAPES = []

def manual_attention(q, k, v, h, layer):
    KERNEL_SHAPES.append((tuple(q.shape), tuple(k.shape), layer))
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
    # (B, H, T, D) and (B, Hkv, T, D), and the layer it serves
    assert ns["KERNEL_SHAPES"] == [((2, 4, 16, 8), (2, 2, 16, 8), 0), ((2, 4, 16, 8), (2, 2, 16, 8), 1)]
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
    ns["ensure_positions"](model, 99)  # the core grows every position module's tables through grow_positions
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
POST_SEEN = []

def record_post(y, v, layer, h):
    POST_SEEN.append((layer, tuple(y.shape), tuple(v.shape)))
    return y
"""
    plugin_dir.add("post", slot_plugin("golfc_attention_post", "post_runtime", "record_post"), runtime)
    ns = load_program(("post",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    forward_loss(ns)
    assert ns["POST_SEEN"] == [
        (0, (2, 16, 4, 8), (2, 16, 2, 8)),
        (1, (2, 16, 4, 8), (2, 16, 2, 8)),
    ]  # (B,T,H,D), (B,T,Hkv,D)


def test_hook_mlp(plugin_dir):
    runtime = """
from torch import nn

class IdentityishMLP(nn.Module):
    def __init__(self, h, layer):
        super().__init__()
        self.layer = layer
        self.fc = CastedLinear(h.model_dim, h.model_dim)

    def forward(self, x):
        return self.fc(x)
"""
    plugin_dir.add("idmlp", slot_plugin("golfc_mlp", "idmlp_runtime", "IdentityishMLP"), runtime)
    ns = load_program(("idmlp",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    model = ns["GPT"](ns["Hyperparameters"]())
    mlps = [m for m in model.modules() if type(m).__name__ == "IdentityishMLP"]
    assert [m.layer for m in mlps] == [0, 1]
    assert torch.isfinite(forward_loss(ns))


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


def test_hook_block_wiring(plugin_dir):
    runtime = """
from torch import nn

class PlainStack(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.attn = nn.ModuleList(CausalSelfAttention(h, i) for i in range(h.num_layers))
        self.mlp = nn.ModuleList(MLP(h, i) for i in range(h.num_layers))

    def forward(self, x, x0):
        for attn, mlp in zip(self.attn, self.mlp):
            x = x + attn(rms_norm(x))
            x = x + mlp(rms_norm(x))
        return x
"""
    plugin_dir.add("plain", slot_plugin("golfc_block_wiring", "plain_runtime", "PlainStack"), runtime)
    ns = load_program(("plain",), env=TINY_MODEL, plugins_dir=plugin_dir.root)
    model = ns["GPT"](ns["Hyperparameters"]())
    assert not any("skip_weights" in name for name, _ in model.named_parameters())
    assert torch.isfinite(forward_loss(ns))


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
    return Impl(module=M, symbols={"quantize_state_dict": "probe_quantize", "dequantize_state_dict": "probe_dequantize",
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


def probe_quantize(state_dict, h):
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
