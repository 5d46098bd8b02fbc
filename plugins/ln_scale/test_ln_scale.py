"""plugins/ln_scale: block i's attention and MLP read rms_norm(x) / sqrt(i + 1); the same factor for a block that
runs twice (depth recurrence); LN_SCALE=0 is the baseline forward bit for bit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import check_contract, load_program, mixing_model, run_emitted, slot_plugin
from tests.adapting_eval import check_adapting_eval_uses_plugin

TINY = {"NUM_LAYERS": "4", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("ln_scale",), env=TINY)


def inputs_seen(model, ids):
    """(layer, 'attn' | 'mlp', rms of the input) for every attention and MLP call of one forward, in order."""
    seen = []

    def record(i, part):
        return lambda m, args: seen.append((i, part, float(args[0].detach().pow(2).mean(-1).sqrt().mean())))

    for i, block in enumerate(model.stack.blocks):
        for part in ("attn", "mlp"):
            getattr(block, part).register_forward_pre_hook(record(i, part))
    model(ids, ids)
    return seen


def test_the_formula_on_a_small_tensor(ns):
    h = ns["Hyperparameters"]()
    assert ns["block_norm"] is ns["ln_scaled_norm"]
    x = torch.randn(2, 3, 32)
    normed = F.rms_norm(x, (32,))
    assert torch.equal(ns["ln_scaled_norm"](x, 0, h, None), normed)  # the first block: factor 1
    for layer in (1, 2, 3):
        assert ns["ln_scale_factor"](layer) == 1.0 / math.sqrt(layer + 1)
        torch.testing.assert_close(ns["ln_scaled_norm"](x, layer, h, None), normed / math.sqrt(layer + 1))


def test_every_attention_and_mlp_input_is_scaled_by_its_block(ns):
    model = mixing_model(ns)
    seen = inputs_seen(model, torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0)))
    assert [(layer, part) for layer, part, _ in seen] == [(i, p) for i in range(4) for p in ("attn", "mlp")]
    for layer, _, rms in seen:
        assert rms == pytest.approx(1 / math.sqrt(layer + 1), rel=1e-4)


def test_a_repeated_block_keeps_its_own_factor(plugin_dir):
    runtime = "def twice(h, phases):\n    return (0, 1, 2, 3, 2, 3)\n"
    plugin_dir.add("twice", slot_plugin("golfc_layer_schedule", "twice_runtime", "twice"), runtime)
    ns = load_program(("ln_scale", "twice"), env=TINY, plugins_dir=plugin_dir.root)
    seen = inputs_seen(mixing_model(ns), torch.randint(0, 64, (2, 16)))
    assert [layer for layer, part, _ in seen if part == "attn"] == [0, 1, 2, 3, 2, 3]
    for layer, _, rms in seen:  # 1/sqrt(layer + 1) by block, not by position in the schedule
        assert rms == pytest.approx(1 / math.sqrt(layer + 1), rel=1e-4)


def test_ln_scale_off_is_the_baseline_forward_bit_for_bit():
    off = load_program(("ln_scale",), env={**TINY, "LN_SCALE": "0"})
    base, on = load_program(env=TINY), load_program(("ln_scale",), env=TINY)
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    models = [mixing_model(program) for program in (base, off, on)]
    with torch.no_grad():
        losses = [model(ids, ids, reduction="none") for model in models]
    assert torch.equal(losses[0], losses[1]) and not torch.allclose(losses[0], losses[2])


def test_the_model_keeps_the_block_norm_contract():
    assert check_contract("block_norm", "ln_scale") == []


def test_the_adapting_eval_runs_ln_scale():
    check_adapting_eval_uses_plugin(("ln_scale",))


@pytest.mark.slow
def test_an_emitted_program_with_ln_scale_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("ln_scale",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ln_scale=True" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
    assert "block_norm = ln_scaled_norm  # plugins/ln_scale" in (tmp_path / "train_gpt.src.py").read_text()
