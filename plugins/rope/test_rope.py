"""rope: the default position_encoding builds the baseline's Rotary (tables unchanged) and grows them on request."""

from __future__ import annotations

import math

import pytest
import torch

from golfc.testing import load_program

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(env=TINY)


def test_the_default_position_encoding_is_rope_with_the_baseline_settings(ns):
    h = ns["Hyperparameters"]()
    assert ns["PositionEncoding"] is ns["rope_position_encoding"]
    model = ns["GPT"](h)
    rotaries = [block.attn.rotary for block in model.stack.blocks]
    assert all(type(r) is ns["Rotary"] for r in rotaries)
    r = rotaries[0]
    assert (r.head_dim, r.base, r.cos.size(1), r.table_dtype) == (8, h.rope_base, 16, torch.bfloat16)
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, 8, 2, dtype=torch.float32) / 8)
    angles = torch.outer(torch.arange(16, dtype=torch.float32), inv_freq.bfloat16().float())
    assert torch.equal(r.cos[0, :, 0], angles.cos().bfloat16()) and torch.equal(r.sin[0, :, 0], angles.sin().bfloat16())


def test_grow_positions_extends_the_tables_once_and_keeps_the_first_rows(ns):
    r = ns["Rotary"](8, 10000.0, 4, False)
    first = r.cos.clone()
    r.grow_positions(3)
    assert r.cos.size(1) == 4
    r.grow_positions(10)
    assert r.cos.size(1) == 10 and torch.equal(r.cos[:, :4], first)
    x = torch.randn(1, 10, 1, 8)
    y = r(x)
    angle = 9 * 10000.0 ** (-2 * 1 / 8)
    expected = x[0, 9, 0, 1] * math.cos(angle) + x[0, 9, 0, 5] * math.sin(angle)
    assert torch.allclose(y[0, 9, 0, 1], expected, atol=1e-5)


def test_ensure_positions_grows_every_attention_of_a_model(ns):
    model = ns["GPT"](ns["Hyperparameters"]())
    ns["ensure_positions"](model, 40)
    assert [block.attn.rotary.cos.size(1) for block in model.stack.blocks] == [40, 40]
