"""plugins/train_calibration: the default calibration source draws this rank's training micro-batches, in the
training stream's order, and never a validation token (the same contract check ar_selfgen passes)."""

from __future__ import annotations

import torch

from golfc.contracts import check_contract
from golfc.testing import TINY_QUANT_ENV, cpu_context, load_program


def test_it_is_the_default_source_and_keeps_the_contract():
    ns = load_program((), env=TINY_QUANT_ENV)
    assert ns["calibration_source"] is ns["train_calibration_batches"]
    assert check_contract("calibration_source") == []  # synthetic shards: no batch is validation data


def test_the_batches_are_the_first_training_micro_batches(tiny_dataset):
    ns = load_program(("int6", "gptq"), env={**TINY_QUANT_ENV, **tiny_dataset.env()})
    h = ns["Hyperparameters"]()
    h.train_files = f"{h.data_path}/fineweb_train_*.bin"
    ctx = cpu_context(ns, vocab=h.vocab_size)
    calibration = ns["Calibration"](ns["GPT"](h), h, ctx, 1234.0)
    batches = list(calibration.batches(3))
    loader = ns["TrainLoader"](h, ctx)
    expected = [loader.next_batch(h.train_batch_tokens, h.train_seq_len, ctx.grad_accum_steps)[0] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(batches, expected, strict=True))
    assert calibration.source == "train_calibration" and calibration.count == 3
