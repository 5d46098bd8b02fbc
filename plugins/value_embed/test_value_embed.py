"""plugins/value_embed: the formula on the listed layers only, the identity at init, one embedding per forward,
VE_LAYERS checks, parameters and tags, the contract, the same forward in the adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import check_contract, cpu_context, load_program, mixing_model, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "NUM_LAYERS": "3",
       "VOCAB_SIZE": "64", "VE_DIM": "4", "VE_LAYERS": "1,-1"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("value_embed",), env=ENV)


def _open(module):
    with torch.no_grad():
        torch.nn.init.normal_(module.proj.weight, std=0.5)
        module.ve_layer_scales.copy_(torch.tensor([0.7, -1.3]))
    return module


def test_layers_and_shapes(ns):
    h = ns["Hyperparameters"]()
    m = ns["ValueEmbedding"](h)
    assert ns["ValueEmbedding"] in ns["VALUE_HOOKS"]
    assert m.layers == (1, 2) and m.kv_dim == 8  # -1 is the last of 3 layers; Hkv * D = 1 * 8
    assert m.table.weight.shape == (64, 4) and m.proj.weight.shape == (8, 4) and not m.proj.weight.any()
    assert m.ve_scale.item() == pytest.approx(0.1) and torch.equal(m.ve_layer_scales, torch.ones(2))


def test_the_formula_on_listed_layers_only(ns):
    torch.manual_seed(0)
    m = _open(ns["ValueEmbedding"](ns["Hyperparameters"]()))
    ids = torch.randint(0, 64, (2, 5))
    v = torch.randn(2, 5, 1, 8)
    fctx = ns["ForwardContext"](ids, None, (), [m])
    assert torch.equal(m(v, 0, fctx), v)  # layer 0 is not listed
    ve = 0.1 * (m.table.weight[ids] @ m.proj.weight.T)  # (2, 5, 8)
    torch.testing.assert_close(m(v, 1, fctx), v + 0.7 * ve.view(2, 5, 1, 8))
    torch.testing.assert_close(m(v, 2, fctx), v + -1.3 * ve.view(2, 5, 1, 8))
    assert set(fctx.cache) == {"value_embed"}  # computed once, shared by the layers


def test_the_identity_at_init(ns):
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]())
    base = load_program((), env=ENV)
    plain = base["GPT"](base["Hyperparameters"]())
    own = plain.state_dict()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k in own}, strict=True)
    for p in (*model.parameters(), *plain.parameters()):  # give the blocks weight, keep the zero projection
        if p.ndim == 2 and not p.any() and p.shape != (8, 4):
            torch.nn.init.normal_(p, std=0.3)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k in own}, strict=True)
    ids = torch.randint(0, 64, (2, 9))
    assert torch.equal(model.hidden(ids), plain.hidden(ids))
    _open(model.value_hooks[0])
    assert not torch.equal(model.hidden(ids), plain.hidden(ids))  # and it acts once the projection moves


def test_a_repeated_layer_adds_it_each_time(ns):
    torch.manual_seed(1)
    m = _open(ns["ValueEmbedding"](ns["Hyperparameters"]()))
    ids, v = torch.randint(0, 64, (1, 4)), torch.randn(1, 4, 1, 8)
    fctx = ns["ForwardContext"](ids, None, (), [m])
    torch.testing.assert_close(m(m(v, 1, fctx), 1, fctx) - v, 2 * (m(v, 1, fctx) - v))


@pytest.mark.parametrize(("layers", "words"), [("3", "[3] not a layer of NUM_LAYERS=3"), ("-4,1", "[-4] not a layer"),
                                               ("2,-1", "a layer named twice")])
def test_ve_layers_outside_the_model_are_one_line(layers, words):
    ns = load_program(("value_embed",), env={**ENV, "VE_LAYERS": layers})
    with pytest.raises(ns["RunInputError"], match=words.replace("[", r"\[").replace("]", r"\]")):
        ns["ValueEmbedding"](ns["Hyperparameters"]())


def test_parameters_tags_and_optimizers(ns):
    model = ns["GPT"](ns["Hyperparameters"]())
    names = [n for n, _ in model.named_parameters() if n.startswith("value_hooks")]
    assert sorted(names) == ["value_hooks.0.proj.weight", "value_hooks.0.table.weight",
                             "value_hooks.0.ve_layer_scales", "value_hooks.0.ve_scale"]
    assert all(ns["is_control_tensor"](f"value_hooks.0.{n}") for n in ("ve_scale", "ve_layer_scales"))
    _adam, muon = ns["build_optimizers"](model, ns["Hyperparameters"](), cpu_context(ns))
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    assert id(model.value_hooks[0].proj.weight) in in_muon and id(model.value_hooks[0].table.weight) not in in_muon


def test_the_value_hook_contract():
    assert check_contract("value_hook", "value_embed", env={"VE_DIM": "4", "VE_LAYERS": "1,3"}) == []


def test_the_wider_table_needs_no_projection():
    ns = load_program(("value_embed",), env={**ENV, "VE_DIM": "8"})
    m = ns["ValueEmbedding"](ns["Hyperparameters"]())
    assert m.proj is None
    ids = torch.randint(0, 64, (1, 3))
    torch.testing.assert_close(m.embedding(ids), 0.1 * m.table.weight[ids])


def _open_model(model):
    _open(model.value_hooks[0])


def test_the_adapting_eval_runs_the_value_embedding_and_trains_it():
    check_adapting_eval_uses_plugin(("value_embed",), env={"VE_DIM": "4", "VE_LAYERS": "0,1"}, prepare=_open_model,
                                    plugin_params=("value_hooks.0.proj.weight", "value_hooks.0.ve_layer_scales"))


def test_mixing_model_sees_it():  # the whole model stays causal with it (the contract's check, spelled out)
    ns = load_program(("value_embed",), env=ENV)
    model = mixing_model(ns)
    _open(model.value_hooks[0])
    ids = torch.randint(0, 64, (1, 8))
    other = ids.clone()
    other[:, 5:] = (other[:, 5:] + 1) % 64
    with torch.no_grad():
        torch.testing.assert_close(model.hidden(ids)[:, :5], model.hidden(other)[:, :5])


@pytest.mark.slow
def test_an_emitted_program_with_value_embeddings_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("value_embed",), tiny_dataset, tmp_path, env={"VE_DIM": "8", "VE_LAYERS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ve_dim=8" in run.stdout and "ve_layers=(1,)" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
