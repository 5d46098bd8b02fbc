"""plugins/ar_selfgen: batches sampled from the model itself (greedy at a tiny temperature), seeded, reading
no data file."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import TINY_QUANT_ENV, cpu_context, load_program


def program(**env):
    ns = load_program(("int6", "gptq", "ar_selfgen"),
                      env={**TINY_QUANT_ENV, "SELFGEN_SEQS": "3", "SELFGEN_SEQ_LEN": "12", **env})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    for p in model.parameters():
        if p.ndim == 2:
            torch.nn.init.normal_(p, std=0.3)
    return ns, h, model, cpu_context(ns, vocab=h.vocab_size)


def test_batches_are_the_models_own_greedy_continuations_at_a_tiny_temperature(monkeypatch):
    ns, h, model, ctx = program(SELFGEN_TEMPERATURE="0.0001")
    monkeypatch.setitem(ns, "load_data_shard", lambda *a, **k: pytest.fail("self-generation read a data file"))
    assert ns["calibration_source"] is ns["ar_selfgen_batches"]
    batches = list(ns["Calibration"](model, h, ctx, 0.0).batches(2))
    assert len(batches) == 2 and all(b.shape == (3, 12) and b.dtype == torch.int64 for b in batches)
    ids = batches[0]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        greedy = model.logits(model.hidden(ids[:, :-1])).float().argmax(-1)
    assert (greedy[:, :] == ids[:, 1:]).float().mean() > 0.9  # bf16 ties aside, each token is the argmax
    again = list(ns["ar_selfgen_batches"](model, h, ctx, 2))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))  # SELFGEN_SEED fixes them
    assert model.training


def test_the_temperature_spreads_the_samples():
    ns, h, model, ctx = program(SELFGEN_TEMPERATURE="5.0", SELFGEN_SEQ_LEN="40")
    ids = next(ns["ar_selfgen_batches"](model, h, ctx, 1))
    assert ids.unique().numel() > 30
