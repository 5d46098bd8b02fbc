"""plugins/fp16_embed: the embedding class (tok_emb, an untied lm_head) stays fp16, the rest is quantized."""

from __future__ import annotations

import torch

from golfc.testing import TINY_QUANT_ENV, load_program


def test_the_embedding_class_is_kept_in_fp16():
    ns = load_program(("mixed_quant", "fp16_embed"), env={**TINY_QUANT_ENV, "TIE_EMBEDDINGS": "0"})
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) for k, v in ns["GPT"](h).state_dict().items()}
    obj, _ = ns["quantize_model"](None, state, h, None, None)
    assert obj["keep"]["tok_emb.weight"].dtype == obj["keep"]["lm_head.weight"].dtype == torch.float16
    assert {ns["lowbit_class"](n) for n in obj["q"]} == {"attn", "mlp"}
    assert ns["QUANT_STAGES"] == [ns["FP16_EMBED_STAGE"]]
