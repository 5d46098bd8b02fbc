"""Parameter tags (tag_param): a plugin's tags win over the core's name and type rules in the training casts,
the muon plugin's optimizer split and the int8 quantizer; untagged parameters keep the baseline's rules."""

from __future__ import annotations

import torch

from golfc.testing import load_program, slot_plugin

TAGGER = """
import torch
from torch import nn

class Tagged(nn.Module):
    def __init__(self, h):
        super().__init__()
        d = h.model_dim
        self.gate = tag_param(nn.Parameter(torch.ones(d)), control=True)  # not a control name
        self.attn_scale_like = tag_param(nn.Parameter(torch.ones(d)), control=False)  # a control name, untagged
        self.mixer = CastedLinear(d, d)
        tag_param(self.mixer.weight, group="adam")
        self.table = tag_param(nn.Parameter(torch.randn(d, d)), group="muon")
        self.big = tag_param(nn.Parameter(torch.randn(300, 256)), quant="fp16")  # int8 by size, fp16 by tag

    def forward(self, ids, x):
        return x
"""

ENV = {"VOCAB_SIZE": "64", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "DEVICE": "cpu"}


def test_tags_win_over_name_and_type_rules(plugin_dir):
    plugin_dir.add("tagger", slot_plugin("golfc_embedding_extras", "tagger_runtime", "Tagged"), TAGGER)
    ns = load_program(("tagger",), env=ENV, plugins_dir=plugin_dir.root)
    ns["CONTROL_TENSOR_NAME_PATTERNS"].append("attn_scale_like")
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h)
    extra = model.extras[0]
    is_control = ns["is_control_tensor"]
    assert is_control("extras.0.gate", extra.gate) and is_control("extras.0.gate")  # by parameter, by name
    assert not is_control("extras.0.attn_scale_like", extra.attn_scale_like)  # control=False beats the pattern
    assert is_control("stack.blocks.0.attn_scale", model.stack.blocks[0].attn_scale)  # untagged: the pattern

    adam, muon = ns["build_optimizers"](model, h, ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8))
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    in_adam = {id(p) for g in adam.param_groups for p in g["params"]}
    assert id(extra.mixer.weight) in in_adam and id(extra.mixer.weight) not in in_muon
    assert id(extra.table) in in_muon and id(extra.table) not in in_adam
    assert id(model.stack.blocks[0].attn.c_q.weight) in in_muon  # untagged CastedLinear: Muon, as before

    obj, _ = ns["quantize_state_dict_int8"](model.state_dict(), h)
    assert obj["passthrough"]["extras.0.gate"].dtype == torch.float32  # control: exact fp32
    assert obj["passthrough"]["extras.0.attn_scale_like"].dtype == torch.float16
    assert obj["passthrough"]["extras.0.big"].dtype == torch.float16 and "extras.0.big" not in obj["quantized"]
    assert "stack.blocks.0.attn.c_q.weight" not in obj["quantized"]  # small: fp16 by the size rule, as before
    assert obj["passthrough"]["stack.blocks.0.attn_scale"].dtype == torch.float32
