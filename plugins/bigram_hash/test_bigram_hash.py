"""bigram_hash: the hash, identity at init, gradients, wiring before the norm, and a tiny end-to-end run."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import load_program, run_emitted

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "BIGRAM_VOCAB_SIZE": "64", "BIGRAM_DIM": "8"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("bigram_hash",), env=TINY)


def test_bucket_is_the_records_hash_and_position_zero_gets_the_last_bucket(ns):
    ids = torch.tensor([[5, 7, 11, 7], [1, 2, 3, 4]])
    idx = ns["bigram_bucket"](ids, 64)
    for b in range(2):
        assert idx[b, 0] == 63
        for t in range(1, 4):
            assert idx[b, t] == ((36313 * int(ids[b, t])) ^ (27191 * int(ids[b, t - 1]))) % 63
    assert int(idx.max()) < 64 and int(idx.min()) >= 0


def test_zero_table_leaves_the_embedding_unchanged_and_still_learns(ns):
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    extra = ns["BigramHashEmbedding"](h)
    ids, e = torch.randint(0, 1024, (2, 16)), torch.randn(2, 16, 32)
    out = extra(ids, e)
    assert torch.equal(out, e)  # identity at init
    out.square().sum().backward()
    assert extra.table.weight.grad.abs().sum() > 0  # the projection is not zero, so the table gets a gradient
    assert extra.bigram_scale.item() == pytest.approx(0.05)


def test_bigram_is_added_before_the_embedding_norm_and_reads_only_the_previous_token(ns):
    assert ns["EMBEDDING_PRE_NORM"] == [ns["BigramHashEmbedding"]]
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    model = ns["GPT"](h)
    extra = model.pre_norm[0]
    torch.nn.init.normal_(extra.table.weight)
    seen = {}
    model.stack.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))  # returns None: args kept
    ids = torch.randint(0, 1024, (1, 16))
    model(ids, ids)
    e = model.tok_emb(ids) + extra(ids, torch.zeros(1, 16, 32))
    torch.testing.assert_close(seen["x"], torch.nn.functional.rms_norm(e, (32,)))
    # causal: changing token 9 changes the bigram contribution at 9 and 10 only
    other = ids.clone()
    other[0, 9] = (other[0, 9] + 1) % 1024
    changed = (extra(ids, torch.zeros(1, 16, 32)) != extra(other, torch.zeros(1, 16, 32))).any(-1)[0]
    assert changed.nonzero().flatten().tolist() == [9, 10]


def test_the_scale_is_a_control_tensor_and_the_projection_a_muon_matrix(ns):
    assert "bigram_scale" in ns["CONTROL_TENSOR_NAME_PATTERNS"]
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h)
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    _, muon = ns["build_optimizers"](model, h, ctx)
    muon_params = {id(p) for g in muon.param_groups for p in g["params"]}
    assert id(model.pre_norm[0].proj.weight) in muon_params
    assert id(model.pre_norm[0].table.weight) not in muon_params


@pytest.mark.slow
def test_an_emitted_program_with_bigram_hash_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("bigram_hash",), tiny_dataset, tmp_path, env={"BIGRAM_VOCAB_SIZE": "128", "BIGRAM_DIM": "16"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "bigram_vocab_size=128" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
