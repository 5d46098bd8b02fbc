"""ntk_rope: rope's tables up to TRAIN_SEQ_LEN, the NTK-aware base beyond; grown outside compiled graphs."""

from __future__ import annotations

import math

import pytest
import torch

from golfc.testing import cpu_context, load_program, mixing_model

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "EVAL_SEQ_LEN": "32", "EVAL_STRIDE": "8", "EVAL_BATCH_SEQS": "4", "DEVICE": "cpu",
        "ROPE_BF16_TABLES": "0"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("sliding_window", "ntk_rope"), env=TINY)


def test_the_ntk_base_formula(ns):
    assert ns["ntk_base"](10000.0, 64, 2048, 1024) == pytest.approx(10000.0 * 2 ** (64 / 62))
    assert ns["ntk_base"](10000.0, 64, 1024, 1024) == 10000.0


def test_up_to_train_seq_len_it_is_ropes_rotation_bit_for_bit(ns):
    h = ns["Hyperparameters"]()
    ntk, rope = ns["PositionEncoding"](16, h, 0), ns["rope_position_encoding"](16, h, 0)
    assert isinstance(ntk, ns["NtkRotary"])
    x = torch.randn(2, 16, 2, 16)
    assert torch.equal(ntk(x), rope(x)) and torch.equal(ntk(x[:, :9]), rope(x[:, :9]))


def test_longer_sequences_rotate_with_the_ntk_base(ns):
    h = ns["Hyperparameters"]()
    ntk, rope = ns["PositionEncoding"](8, h, 0), ns["rope_position_encoding"](8, h, 0)
    x = torch.randn(1, 32, 1, 8)
    y = ntk(x)
    base = 10000.0 * 2 ** (8 / 6)
    for t in (0, 5, 31):
        for i in range(4):
            angle = t * base ** (-2 * i / 8)
            c, s = math.cos(angle), math.sin(angle)
            assert torch.allclose(y[0, t, 0, i], x[0, t, 0, i] * c + x[0, t, 0, i + 4] * s, atol=1e-5)
    assert not torch.allclose(y, rope(x))
    assert torch.equal(ntk(x[:, :16]), rope(x[:, :16]))  # training-length tables untouched by the longer ones


def test_the_sliding_evaluation_grows_ntk_tables_before_its_forward(ns):
    h = ns["Hyperparameters"]()
    model = mixing_model(ns)
    val = torch.randint(0, 64, (120,), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    scores = ns["score_validation"](model, val, h, cpu_context(ns), False)
    assert sorted(scores.positions.tolist()) == list(range(1, 120))
    assert all(hasattr(b.attn.rotary, "ntk_cos_32") for b in model.stack.blocks)
