"""plugins/yarn_rope: rope's frequencies divided by ramp * (1/scale - 1) + 1 (the ternary record's YaRN), the same
tables at every length, plain RoPE when YARN_MAX_LEN = TRAIN_SEQ_LEN, partial RoPE honoured."""

from __future__ import annotations

import math

import pytest
import torch

from golfc.engine import resolve
from golfc.errors import GolfcError, SlotConflictError
from golfc.recipe import Recipe
from golfc.testing import check_contract, load_program, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "DEVICE": "cpu", "YARN_MAX_LEN": "64", "ROPE_BF16_TABLES": "0"}  # head_dim 16, scale 1/4


def yarn_angle(t, i, dims, base, scale):
    """The record's frequency i of `dims` rotated dims: base^(-2i/dims) / (ramp * (1/scale - 1) + 1)."""
    ramp = min(max((2 * i / dims - 0.25) / 0.75, 0.0), 1.0)
    return t * base ** (-2 * i / dims) / (ramp * (1 / scale - 1) + 1)


@pytest.fixture(scope="module")
def ns():
    return load_program(("yarn_rope",), env=TINY)


def test_the_yarn_divisors(ns):
    div = ns["yarn_divisors"](16, 0.25)  # 2i/16 = 0, .125, .25, ..., .875
    expected = [min(max((2 * i / 16 - 0.25) / 0.75, 0.0), 1.0) * 3 + 1 for i in range(8)]
    torch.testing.assert_close(div, torch.tensor(expected))
    assert div[:3].tolist() == [1.0, 1.0, 1.0] and div[-1] == pytest.approx(1 + 3 * (0.875 - 0.25) / 0.75)


def test_the_rotation_uses_the_yarn_frequencies_at_every_length(ns):
    rotary = ns["PositionEncoding"](16, ns["Hyperparameters"](), 0)
    assert isinstance(rotary, ns["YarnRotary"])
    x = torch.randn(1, 40, 1, 16)  # longer than TRAIN_SEQ_LEN: the tables grow, the frequencies stay
    y = rotary(x)
    for t in (0, 7, 39):
        for i in (0, 3, 7):
            angle = yarn_angle(t, i, 16, 10000.0, 0.25)
            c, s = math.cos(angle), math.sin(angle)
            assert torch.allclose(y[0, t, 0, i], x[0, t, 0, i] * c + x[0, t, 0, i + 8] * s, atol=1e-5)
    assert torch.equal(rotary(x[:, :16]), y[:, :16])  # training-length positions: the same tables


def test_yarn_max_len_equal_to_train_seq_len_is_plain_rope_bit_for_bit():
    ns = load_program(("yarn_rope",), env={**TINY, "YARN_MAX_LEN": "16", "ROPE_BF16_TABLES": "1"})
    h = ns["Hyperparameters"]()
    x = torch.randn(2, 16, 2, 16)
    assert torch.equal(ns["PositionEncoding"](16, h, 0)(x), ns["rope_position_encoding"](16, h, 0)(x))


def test_partial_rope_interpolates_the_rotated_dims_only():
    ns = load_program(("partial_rope", "yarn_rope"), env={**TINY, "ROPE_DIMS": "8"})
    rotary = ns["PositionEncoding"](16, ns["Hyperparameters"](), 0)
    x = torch.randn(1, 16, 1, 16)
    y = rotary(x)
    assert torch.equal(y[..., 8:], x[..., 8:])
    angle = yarn_angle(5, 3, 8, 10000.0, 0.25)  # the ramp runs over the 8 rotated dims
    c, s = math.cos(angle), math.sin(angle)
    assert torch.allclose(y[0, 5, 0, 3], x[0, 5, 0, 3] * c + x[0, 5, 0, 7] * s, atol=1e-5)


def test_yarn_max_len_below_train_seq_len_and_a_second_rope_form_are_refused():
    with pytest.raises(GolfcError, match="YARN_MAX_LEN=8, TRAIN_SEQ_LEN=16: expected YARN_MAX_LEN >= TRAIN_SEQ_LEN"):
        resolve(Recipe(plugins=("yarn_rope",), overrides={"YARN_MAX_LEN": "8", "TRAIN_SEQ_LEN": "16"}))
    with pytest.raises(SlotConflictError, match="ntk_rope and yarn_rope both fill slot 'position_encoding'"):
        resolve(Recipe(plugins=("ntk_rope", "yarn_rope")))


def test_the_model_keeps_the_slot_contract_with_yarn_rope():
    assert check_contract("position_encoding", "yarn_rope", env={"YARN_MAX_LEN": "64"}) == []


def test_the_adapting_eval_runs_yarn_rope():
    check_adapting_eval_uses_plugin(("yarn_rope",), env={"YARN_MAX_LEN": "64"})


@pytest.mark.slow
def test_an_emitted_program_with_yarn_and_partial_rope_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("partial_rope", "yarn_rope"), tiny_dataset, tmp_path, env={"ROPE_DIMS": "8",
                                                                                  "YARN_MAX_LEN": "256"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rope_dims=8" in run.stdout and "yarn_max_len=256" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
