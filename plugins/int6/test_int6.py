"""plugins/int6 (the low-bit engine): error bound per row, storage per tensor class, round trip through the
artifact's bytes on random and trained weights, the format check, and a tiny end-to-end run."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch

from golfc.testing import TINY_QUANT_ENV, load_program


def knobs(**kw):
    base = dict(quant_mlp_bits=6, quant_attn_bits=6, quant_embed_bits=8, quant_other_bits=6,
                quant_keep_float_numel=1024, quant_clip_percentile=99.99984)
    return SimpleNamespace(**{**base, **kw})


def check_bound(w, q, scale, qmax, clip_q=0.9999984):
    """Inside the clip every value is within half a step (the fp16 scale is the step used); outside, the value
    is the clip."""
    step = scale.float()[:, None]
    out = q.float() * step
    clip = torch.quantile(w.abs(), clip_q, dim=1)[:, None]
    inside = w.abs() <= clip
    assert q.dtype == torch.int8 and int(q.abs().max()) <= qmax
    assert ((out - w).abs() <= step / 2 + 1e-6)[inside].all()
    assert (out[~inside].abs() <= clip.expand_as(w)[~inside] * (1 + 2**-10)).all()


@pytest.mark.parametrize("bits", [6, 5, 8])
def test_per_row_error_bound_on_random_rows(bits):
    ns = load_program(("int6",))
    torch.manual_seed(0)
    w = torch.randn(200, 300) * torch.linspace(0.01, 1.0, 200)[:, None]
    q, scale = ns["lowbit_quantize_matrix"]("stack.blocks.0.mlp.fc.weight", w, bits, knobs())
    qmax = (1 << (bits - 1)) - 1
    assert scale.dtype == torch.float16 and scale.shape == (200,)
    clip = torch.quantile(w.abs(), 0.9999984, dim=1)
    torch.testing.assert_close(scale.float(), (clip / qmax).half().float())
    check_bound(w, q, scale, qmax)


def test_bits_per_tensor_class_and_what_stays_float():
    ns = load_program(("mixed_quant",))
    assert ns["QUANT_LABEL"] == "mixed"
    h = knobs(quant_mlp_bits=5, quant_attn_bits=6, quant_embed_bits=8, quant_other_bits=7)
    torch.manual_seed(0)
    sd = {
        "tok_emb.weight": torch.randn(100, 32),
        "stack.blocks.0.attn.c_q.weight": torch.randn(64, 32),
        "stack.blocks.0.mlp.fc.weight": torch.randn(64, 32).bfloat16(),
        "pre_norm.0.table.weight": torch.randn(64, 32),
        "stack.blocks.0.attn_scale": torch.randn(2048),  # control tensor, however large: fp32, exact
        "stack.blocks.0.small": torch.randn(16, 8),  # small: fp16
        "counter": torch.arange(3),
    }
    obj, stats = ns["quantize_model_lowbit"](None, sd, h, None, None)
    assert obj["bits"] == {"tok_emb.weight": 8, "stack.blocks.0.attn.c_q.weight": 6,
                           "stack.blocks.0.mlp.fc.weight": 5, "pre_norm.0.table.weight": 7}
    assert int(obj["q"]["stack.blocks.0.mlp.fc.weight"].abs().max()) == 15
    assert obj["keep"]["stack.blocks.0.attn_scale"].dtype == torch.float32
    assert obj["keep"]["stack.blocks.0.small"].dtype == torch.float16
    out = ns["dequantize_state_dict_lowbit"](obj)
    assert {k: (v.dtype, v.shape) for k, v in out.items()} == {k: (v.dtype, v.shape) for k, v in sd.items()}
    assert torch.equal(out["stack.blocks.0.attn_scale"], sd["stack.blocks.0.attn_scale"])
    assert torch.equal(out["counter"], sd["counter"])
    assert stats["param_count"] == sum(t.numel() for t in sd.values())
    assert stats["payload_bytes"] == (100 * 32 + 64 * 32 * 3 + 2 * (100 + 64 * 3) + 4 * 2048 + 2 * 128 + 8 * 3)


@pytest.mark.parametrize("plugins", [("int6",), ("int5",), ("mixed_quant",), ("int6", "zstd"), ("int5", "brotli"),
                                     ("mixed_quant", "lzma")])
def test_round_trip_through_the_artifact_bytes_on_trained_weights(plugins, tiny_trained):
    """quantize -> torch.save -> compress -> decompress -> torch.load -> dequantize: every matrix within half a
    step of its row (inside the clip), every kept tensor exact or fp16."""
    env, state = tiny_trained
    ns = load_program(plugins, env=env)
    h = ns["Hyperparameters"]()
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    buf = io.BytesIO()
    torch.save(obj, buf)
    back = torch.load(io.BytesIO(ns["decompress_bytes"](ns["compress_bytes"](buf.getvalue()))))
    out = ns["dequantize_state_dict"](back)
    assert set(out) == set(state) and len(obj["q"]) >= 9  # embedding + 4 matrices per block
    for name, q in back["q"].items():
        w = state[name].float().reshape(q.shape)
        check_bound(w, q, back["scale"][name], (1 << (back["bits"][name] - 1)) - 1)
        expected_bits = ns["lowbit_bits"](name, h)
        assert back["bits"][name] == expected_bits
    model = ns["GPT"](h)
    model.load_state_dict(out, strict=True)


def test_an_artifact_of_another_format_is_refused_in_one_line():
    ns = load_program(("int6",))
    int8_obj = {"__quant_format__": "int8_per_row_v1", "quantized": {}}
    with pytest.raises(ns["RunInputError"], match=r"^artifact format 'int8_per_row_v1': this program reads "
                       r"'golfc_lowbit_v1' artifacts$"):
        ns["dequantize_state_dict"](int8_obj)
    with pytest.raises(ns["RunInputError"], match="'golfc_lowbit_v0'"):
        ns["dequantize_state_dict"]({"__quant_format__": "golfc_lowbit_v0"})


def test_tiny_quant_env_quantizes_every_matrix_class():
    ns = load_program(("int6",), env=TINY_QUANT_ENV)
    h = ns["Hyperparameters"]()
    state = ns["GPT"](h).state_dict()
    classes = {ns["lowbit_class"](n) for n, t in state.items() if t.numel() > h.quant_keep_float_numel}
    assert classes == {"embed", "attn", "mlp"}


@pytest.mark.slow
def test_an_emitted_program_with_int6_and_zstd_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    run = run_emitted(("int6", "zstd"), tiny_dataset, tmp_path, env={"QUANT_KEEP_FLOAT_NUMEL": "1024"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Serialized model int6+zstd:" in run.stdout and run.final_bpb is not None
    assert "final_int6_zstd_roundtrip_exact" in run.stdout


def test_an_all_zero_row_stays_zero_and_finite():
    ns = load_program(("int6",))
    w = torch.randn(4, 300)
    w[1] = 0.0  # a zero-initialised output projection's rows
    q, scale = ns["lowbit_quantize_matrix"]("stack.blocks.0.attn.proj.weight", w, 6, knobs())
    assert float(scale[1]) > 0 and torch.equal(q[1], torch.zeros_like(q[1]))
    assert torch.isfinite(q.float() * scale.float()[:, None]).all()
