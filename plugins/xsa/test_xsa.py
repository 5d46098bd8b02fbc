"""xsa: the projection formula, GQA grouping, the layer choice, and a tiny end-to-end run."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, mixing_model

TINY = {"NUM_LAYERS": "4", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "16"}


class H:
    num_layers, xsa_last_n = 4, 2


def test_xsa_removes_each_heads_component_along_its_own_value_head():
    ns = load_program(("xsa",), env=TINY)
    torch.manual_seed(0)
    y, v = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 2, 8)
    out = ns["ExclusiveSelfAttention"](H(), 3)(y, v, None)
    for head in range(4):
        kv = head // 2  # query heads 0, 1 read value head 0; 2, 3 read value head 1
        v_hat = v[:, :, kv] / v[:, :, kv].norm(dim=-1, keepdim=True)
        expected = y[:, :, head] - (y[:, :, head] * v_hat).sum(-1, keepdim=True) * v_hat
        torch.testing.assert_close(out[:, :, head], expected)
        # what is left is orthogonal to the token's own value
        assert (out[:, :, head] * v_hat).sum(-1).abs().max() < 1e-5


def test_xsa_is_the_identity_before_the_last_n_layers_and_acts_on_them():
    ns = load_program(("xsa",), env=TINY)
    y, v = torch.randn(1, 3, 4, 8), torch.randn(1, 3, 2, 8)
    x = torch.randn(1, 3, 32)  # the attention's input: XSA does not read it
    assert ns["ExclusiveSelfAttention"](H(), 1)(y, v, x) is y
    assert not torch.equal(ns["ExclusiveSelfAttention"](H(), 2)(y, v, x), y)


def test_xsa_is_wired_after_attention_and_changes_the_model():
    ns = load_program(("xsa",), env={**TINY, "XSA_LAST_N": "1"})
    assert ns["ATTENTION_POST"] == [ns["ExclusiveSelfAttention"]]
    h = ns["Hyperparameters"]()
    assert h.xsa_last_n == 1
    with_xsa = mixing_model(ns)  # non-zero output projections, so attention reaches the stream
    assert [b.attn.post[0].active for b in with_xsa.stack.blocks] == [False, False, False, True]
    plain = load_program((), env=TINY)
    without = plain["GPT"](plain["Hyperparameters"]())
    without.load_state_dict(with_xsa.state_dict())  # the same weights (XSA adds none): only XSA differs
    ids = torch.randint(0, 1024, (2, 16))
    assert not torch.allclose(with_xsa(ids, ids), without(ids, ids))


@pytest.mark.slow
def test_an_emitted_program_with_xsa_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    run = run_emitted(("xsa",), tiny_dataset, tmp_path, env={"XSA_LAST_N": "2"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "xsa_last_n=2" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
