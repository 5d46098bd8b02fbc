"""plugins/partial_rope: the first ROPE_DIMS dims rotated (tables for them only), the rest untouched; every rope form
honours it (NTK on the rotated dims); bad values and position encodings that would ignore it are refused."""

from __future__ import annotations

import math

import pytest
import torch

from golfc.engine import resolve
from golfc.errors import RecipeError
from golfc.recipe import Recipe
from golfc.testing import check_contract, load_program, run_emitted, slot_plugin
from tests.adapting_eval import check_adapting_eval_uses_plugin

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "DEVICE": "cpu", "ROPE_DIMS": "4", "ROPE_BF16_TABLES": "0"}  # head_dim 8, 4 rotated


def rotated(x, t, i, rd, base):
    """Element i < rd/2 of position t and its pair i + rd/2, rotated by t * base^(-2i/rd) (half-split pairs)."""
    angle = t * base ** (-2 * i / rd)
    c, s = math.cos(angle), math.sin(angle)
    a, b = x[0, t, 0, i], x[0, t, 0, i + rd // 2]
    return a * c + b * s, -a * s + b * c


@pytest.fixture(scope="module")
def ns():
    return load_program(("partial_rope",), env=TINY)


def test_only_the_first_rope_dims_are_rotated(ns):
    h = ns["Hyperparameters"]()
    rotary = ns["PositionEncoding"](8, h, 0)
    assert rotary.rope_dims == 4 and tuple(rotary.cos.shape) == (1, 16, 1, 2)  # tables for the 4 rotated dims
    x = torch.randn(1, 16, 1, 8)
    y = rotary(x)
    assert torch.equal(y[..., 4:], x[..., 4:])  # no position signal in dims 4..7
    for t in (0, 3, 15):
        for i in range(2):
            first, second = rotated(x, t, i, 4, 10000.0)
            assert torch.allclose(y[0, t, 0, i], first, atol=1e-5)
            assert torch.allclose(y[0, t, 0, i + 2], second, atol=1e-5)


def test_rope_dims_zero_or_the_whole_head_is_ropes_rotation_bit_for_bit():
    plain = load_program(env={**TINY, "ROPE_BF16_TABLES": "1"})
    x = torch.randn(2, 16, 4, 8)
    reference = plain["PositionEncoding"](8, plain["Hyperparameters"](), 0)(x)
    for dims in ("0", "8"):
        ns = load_program(("partial_rope",), env={**TINY, "ROPE_BF16_TABLES": "1", "ROPE_DIMS": dims})
        assert torch.equal(ns["PositionEncoding"](8, ns["Hyperparameters"](), 0)(x), reference)


def test_ntk_rope_rebuilds_its_base_on_the_rotated_dims():
    ns = load_program(("partial_rope", "ntk_rope"), env=TINY)
    rotary = ns["PositionEncoding"](8, ns["Hyperparameters"](), 0)
    x = torch.randn(1, 32, 1, 8)  # twice TRAIN_SEQ_LEN: s = 2
    y = rotary(x)
    base = 10000.0 * 2 ** (4 / 2)  # base * s^(R / (R - 2)) with R = ROPE_DIMS = 4, not head_dim
    assert torch.equal(y[..., 4:], x[..., 4:])
    for t in (1, 31):
        first, second = rotated(x, t, 1, 4, base)
        assert torch.allclose(y[0, t, 0, 1], first, atol=1e-5) and torch.allclose(y[0, t, 0, 3], second, atol=1e-5)


def test_the_model_keeps_the_slot_contract_with_partial_rope():
    assert check_contract("position_encoding", "partial_rope", env={"ROPE_DIMS": "4"}) == []


def test_bad_rope_dims_are_one_line_at_build_and_at_start(ns):
    for value in ("5", "12"):  # odd; more than the head has
        with pytest.raises(RecipeError, match=rf"ROPE_DIMS={value}: expected an even number from 2 to the head "
                           r"dimension 8 \(MODEL_DIM / NUM_HEADS\), or 0 for all"):
            resolve(Recipe(plugins=("partial_rope",), overrides={**TINY, "ROPE_DIMS": value}))
    bad = load_program(("partial_rope",), env={**TINY, "ROPE_DIMS": "10"})  # from the environment: at model build
    with pytest.raises(bad["RunInputError"], match="ROPE_DIMS=10: expected an even number from 2 to the head "
                       "dimension 8"):
        bad["GPT"](bad["Hyperparameters"]())


def test_a_position_encoding_that_ignores_rope_dims_is_refused(plugin_dir):
    runtime = "def no_positions(head_dim, h, layer):\n    return lambda x: x\n"
    plugin_dir.add("nopos", slot_plugin("golfc_position_encoding", "nopos_runtime", "no_positions"), runtime)
    with pytest.raises(RecipeError, match="position_encoding is filled by nopos"):
        resolve(Recipe(plugins=("partial_rope", "nopos")), plugins_dir=plugin_dir.root)
    for form in ("ntk_rope", "yarn_rope"):
        resolve(Recipe(plugins=("partial_rope", form)))


def test_the_adapting_eval_runs_partial_rope():
    check_adapting_eval_uses_plugin(("partial_rope",), env={"ROPE_DIMS": "4"})


@pytest.mark.slow
def test_an_emitted_program_with_partial_rope_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("partial_rope",), tiny_dataset, tmp_path, env={"ROPE_DIMS": "8"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rope_dims=8" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
