"""plugins/int5: the low-bit engine with int5 defaults: [-15, 15] on every block matrix, int8 embeddings."""

from __future__ import annotations

import pytest
import torch

from golfc.errors import SlotConflictError
from golfc.testing import TINY_QUANT_ENV, load_program


def test_int5_defaults_and_values():
    ns = load_program(("int5",), env=TINY_QUANT_ENV)
    h = ns["Hyperparameters"]()
    assert ns["QUANT_LABEL"] == "int5" and ns["quantize_model"] is ns["quantize_model_lowbit"]
    assert (h.quant_mlp_bits, h.quant_attn_bits, h.quant_embed_bits, h.quant_other_bits) == (5, 5, 8, 5)
    torch.manual_seed(0)
    state = ns["GPT"](h).state_dict()
    state = {k: (torch.randn_like(v) if v.ndim == 2 else v) for k, v in state.items()}
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    for name, q in obj["q"].items():
        assert int(q.abs().max()) == (127 if "tok_emb" in name else 15), name


def test_int5_and_int6_are_one_quantizer():
    with pytest.raises(SlotConflictError, match="int5 cannot be combined with int6"):
        load_program(("int5", "int6"))
