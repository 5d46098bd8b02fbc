"""plugins/mixed_quant: bits per tensor class from its knobs (int5 MLP, int6 attention, int8 embedding)."""

from __future__ import annotations

import torch

from golfc.testing import TINY_QUANT_ENV, load_program


def test_bits_per_class_follow_the_knobs():
    ns = load_program(("mixed_quant",), env={**TINY_QUANT_ENV, "QUANT_EMBED_BITS": "7"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    state = {k: (torch.randn_like(v) if v.ndim == 2 else v) for k, v in ns["GPT"](h).state_dict().items()}
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    expected = {"embed": 7, "attn": 6, "mlp": 5}
    assert obj["bits"] and all(bits == expected[ns["lowbit_class"](n)] for n, bits in obj["bits"].items())
    assert {int(q.abs().max()) for n, q in obj["q"].items() if ".mlp." in n} == {15}
    assert {int(q.abs().max()) for n, q in obj["q"].items() if ".attn." in n} == {31}
    assert int(obj["q"]["tok_emb.weight"].abs().max()) == 63
