"""plugins/int8_quant: error bound, storage rules per tensor kind, quantile path, baseline payload size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from golfc.testing import load_program


@pytest.fixture(scope="module")
def ns():
    return load_program(overrides={"DEVICE": "cpu"})


NO_FLOOR = SimpleNamespace(int8_min_scale=0.0)


def test_per_row_int8_error_bound(ns):
    torch.manual_seed(0)
    w = torch.randn(300, 256) * torch.linspace(0.01, 1.0, 300)[:, None]  # rows of very different scales
    obj, stats = ns["quantize_state_dict_int8"]({"blocks.0.mlp.fc.weight": w}, NO_FLOOR)
    q, s = obj["quantized"]["blocks.0.mlp.fc.weight"], obj["scales"]["blocks.0.mlp.fc.weight"]
    assert q.dtype == torch.int8 and q.shape == w.shape and q.abs().max() <= 127
    assert s.dtype == torch.float16 and s.shape == (300,)
    clip = torch.quantile(w.abs(), 0.9999984, dim=1)
    torch.testing.assert_close(s.float(), (clip / 127).half().float())
    out = ns["dequantize_state_dict_int8"](obj)["blocks.0.mlp.fc.weight"]
    assert out.dtype == torch.float32
    inside = w.abs() <= clip[:, None]
    # rounding: half a step; the fp16 scale adds at most 127 * 2^-11 of a step
    err = (out - w).abs() / (clip[:, None] / 127)
    assert err[inside].max() <= 0.5 + 127 * 2**-11 + 1e-3
    assert (out[~inside].abs() <= clip[:, None].expand_as(w)[~inside] * (1 + 2**-10)).all()  # clipped values
    assert stats["param_count"] == w.numel() and stats["payload_bytes"] == w.numel() + 2 * 300
    assert stats["baseline_tensor_bytes"] == 4 * w.numel()


def test_reference_floors_row_scales_at_one_127th(ns):
    """The reference's scale floor: rows with a clip under 1.0 share the step 1/127 (INT8_MIN_SCALE)."""
    torch.manual_seed(0)
    w = torch.randn(400, 256) * torch.linspace(0.005, 1.0, 400)[:, None]  # clips from ~0.02 to ~4
    h = SimpleNamespace(int8_min_scale=1.0 / 127.0)
    obj, _ = ns["quantize_state_dict_int8"]({"w": w}, h)
    scale = obj["scales"]["w"].float()
    clip = torch.quantile(w.abs(), 0.9999984, dim=1)
    small = clip < 1.0
    assert small.any() and (~small).any()
    torch.testing.assert_close(scale[small], torch.full_like(scale[small], 1.0 / 127.0).half().float())
    torch.testing.assert_close(scale[~small], (clip[~small] / 127).half().float())
    q = obj["quantized"]["w"].float()
    assert q[small].abs().max() < 127 and q[~small].abs().max() == 127  # small rows use few levels
    assert ns["Hyperparameters"].int8_min_scale == pytest.approx(1.0 / 127.0)  # the default is the reference's


def test_storage_rules_and_exact_passthrough(ns):
    torch.manual_seed(0)
    sd = {
        "stack.blocks.0.attn_scale": torch.randn(64),  # control tensor: fp32, exact
        "stack.skip_weights": torch.randn(4, 64),  # control tensor, 2-D but small
        "small.weight": torch.randn(100, 10),  # small float: fp16
        "small_bf16": torch.randn(50).bfloat16(),  # small float in bf16: stored fp16, back to bf16
        "big_vector": torch.randn(70_000),  # large non-matrix: per-tensor int8
        "emb.weight": torch.randn(1024, 96).bfloat16(),  # large matrix in bf16: per-row, back to bf16
        "counter": torch.arange(5),  # non-float: passthrough
    }
    obj, stats = ns["quantize_state_dict_int8"](sd)
    assert set(obj["quantized"]) == {"big_vector", "emb.weight"}
    assert obj["scales"]["big_vector"].ndim == 0 and obj["scales"]["emb.weight"].shape == (1024,)
    kept = obj["passthrough"]
    assert kept["stack.blocks.0.attn_scale"].dtype == kept["stack.skip_weights"].dtype == torch.float32
    assert kept["small.weight"].dtype == kept["small_bf16"].dtype == torch.float16
    out = ns["dequantize_state_dict_int8"](obj)
    assert set(out) == set(sd)
    for name, t in sd.items():
        assert out[name].dtype == t.dtype and out[name].shape == t.shape, name
    assert torch.equal(out["stack.blocks.0.attn_scale"], sd["stack.blocks.0.attn_scale"])
    assert torch.equal(out["stack.skip_weights"], sd["stack.skip_weights"])
    assert torch.equal(out["counter"], sd["counter"])
    assert torch.equal(out["small.weight"], sd["small.weight"].half().float())
    step = torch.quantile(sd["big_vector"].abs(), 0.9999984) / 127
    assert (out["big_vector"] - sd["big_vector"]).abs().max() <= step  # clipped tail included
    assert stats["param_count"] == sum(t.numel() for t in sd.values())


def test_order_statistic_path_equals_torch_quantile(ns):
    torch.manual_seed(0)
    x = torch.randn(6, 1000)
    expected = torch.quantile(x.abs(), 0.9999984, dim=1)
    torch.testing.assert_close(ns["int8_abs_quantile"](x), expected)
    ns_small = load_program(overrides={"DEVICE": "cpu"})
    ns_small["INT8_QUANTILE_MAX_NUMEL"] = 999  # rows longer than the limit: kthvalue path
    torch.testing.assert_close(ns_small["int8_abs_quantile"](x), expected)
    ns_small["INT8_QUANTILE_MAX_NUMEL"] = 2500  # blocks of two rows
    torch.testing.assert_close(ns_small["int8_abs_quantile"](x), expected)


def test_baseline_payload_size(ns):
    """At the baseline's shapes the payload is the 17,178,912 bytes of the reference log."""
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    for _name, p in model.named_parameters():
        if p.ndim == 2 and p.numel() > 65_536:  # realistic rows, and no all-zero projections
            torch.nn.init.normal_(p, std=0.02)
    obj, stats = ns["quantize_state_dict_int8"](model.state_dict())
    assert stats["param_count"] == 17_059_912 and stats["payload_bytes"] == 17_178_912
    assert len(obj["quantized"]) == 1 + 9 * 6


@pytest.mark.parametrize("artifact", [{"__quant_format__": "int6_gptq_v2", "quantized": {}}, {"quantized": {}}, []])
def test_an_artifact_of_another_format_is_refused_in_one_line(artifact):
    ns = load_program()
    expected = r"^artifact format .*: this program reads 'int8_per_row_v1' artifacts$"
    with pytest.raises(ns["RunInputError"], match=expected):
        ns["dequantize_state_dict_int8"](artifact)
