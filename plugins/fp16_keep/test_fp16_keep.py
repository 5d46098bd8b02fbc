"""plugins/fp16_keep: named tensors stay fp16 (exactly their fp16 values after the round trip)."""

from __future__ import annotations

import pytest
import torch

from golfc.errors import RecipeError
from golfc.testing import TINY_QUANT_ENV, load_program


def test_named_tensors_are_kept_in_fp16():
    env = {**TINY_QUANT_ENV, "FP16_KEEP_NAME_PATTERNS": "tok_emb, stack.blocks.1.attn.c_k"}
    ns = load_program(("int6", "fp16_keep"), env=env)
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) for k, v in ns["GPT"](h).state_dict().items()}
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    for name in ("tok_emb.weight", "stack.blocks.1.attn.c_k.weight"):
        assert name not in obj["q"] and obj["keep"][name].dtype == torch.float16
    assert "stack.blocks.0.attn.c_k.weight" in obj["q"] and "stack.blocks.1.attn.c_q.weight" in obj["q"]
    out = ns["dequantize_state_dict"](obj)
    assert torch.equal(out["tok_emb.weight"], state["tok_emb.weight"].half().float())


def test_needs_the_low_bit_quantizer():
    expected = "fp16_keep acts on the low-bit quantizer: add one of int6, int5, mixed_quant"
    with pytest.raises(RecipeError, match=expected):
        load_program(("fp16_keep",))
