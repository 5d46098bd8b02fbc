"""plugins/varlen: the document index, the packed batch's attention equal to each document run alone (kernel and
whole GPT), the FlexAttention mask equal to the dense one, one mask per forward, the adapting eval, the L18
documents probe of golfc verify passing on a varlen build, refused beside bigram_hash, e2e."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from golfc.testing import TINY_RUN_ENV, load_program, mixing_model, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "NUM_LAYERS": "3", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
       "VOCAB_SIZE": "64", "TRAIN_SEQ_LEN": "24", "TRAIN_BATCH_TOKENS": "1536"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("varlen",), env=ENV)


def packed_row(seed=0, T=24, starts=(0, 5, 6, 13)):
    """One row of documents [BOS] + tokens starting at `starts` (a one-token document at 5), BOS nowhere else."""
    ids = torch.randint(2, 64, (T,), generator=torch.Generator().manual_seed(seed))
    ids[list(starts)] = 1
    return ids


def test_the_document_index_counts_bos_within_each_row(ns):
    ids = torch.tensor([[5, 6, 1, 7, 8, 1, 1, 3], [1, 2, 3, 4, 1, 5, 6, 7]])
    assert ns["varlen_documents"](ids).tolist() == [[0, 0, 1, 1, 1, 2, 3, 3], [1, 1, 1, 1, 2, 2, 2, 2]]
    mask = ns["varlen_dense_mask"](ns["varlen_documents"](ids[:1]))[0, 0]
    assert ns["varlen_dense_mask"](ns["varlen_documents"](ids)).shape == (2, 1, 8, 8)
    assert mask[4].tolist() == [False, False, True, True, True, False, False, False]  # its document, causally
    assert mask[1].tolist() == [True, True, False, False, False, False, False, False]  # the leading tail is one too


def qkv(seed, T=24):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, heads, T, 8, generator=g) for heads in (4, 2, 2))  # q, k, v (GQA 2)


def fctx_for(ns, ids):
    return ns["ForwardContext"](ids, None, (), [])


def test_a_packed_batchs_attention_equals_each_document_run_alone(ns):
    h = ns["Hyperparameters"]()
    starts = (0, 5, 6, 13)
    ids = torch.stack([packed_row(0, starts=starts), packed_row(1, starts=starts)])
    q, k, v = qkv(2)
    y = ns["varlen_attention"](q, k, v, h, 0, fctx_for(ns, ids))
    for s, e in zip(starts, (*starts[1:], 24)):
        alone = F.scaled_dot_product_attention(q[:, :, s:e], k[:, :, s:e].repeat_interleave(2, 1),
                                               v[:, :, s:e].repeat_interleave(2, 1), is_causal=True)
        torch.testing.assert_close(y[:, :, s:e], alone, rtol=1e-5, atol=1e-6)
    full = ns["sdpa_attention"](q, k, v, h, 0)  # without documents: the first document sees the same, later ones not
    torch.testing.assert_close(y[:, :, :5], full[:, :, :5], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(y[:, :, 6:], full[:, :, 6:], atol=1e-3)


def test_without_a_forward_context_it_is_the_plain_causal_kernel(ns):
    h = ns["Hyperparameters"]()
    q, k, v = torch.randn(1, 4, 10, 8), torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8)
    assert torch.equal(ns["varlen_attention"](q, k, v, h, 1), ns["sdpa_attention"](q, k, v, h, 1))


def test_the_flexattention_mask_gives_the_dense_masks_result(ns):
    ids = torch.stack([packed_row(3), packed_row(4, starts=(2, 3, 20))])
    docs = ns["varlen_documents"](ids)
    q, k, v = qkv(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager FlexAttention warns that it is the unfused reference
        flex = ns["masked_flex_attention"](q, k, v, ns["varlen_block_mask"](docs))
    dense = ns["masked_sdpa_attention"](q, k, v, ns["varlen_dense_mask"](docs))
    torch.testing.assert_close(flex, dense, rtol=1e-5, atol=1e-5)


def test_each_documents_scores_in_a_packed_gpt_equal_the_document_scored_alone(ns):
    model = mixing_model(ns)
    starts = (0, 5, 6, 13)
    ids = packed_row(6, starts=starts)
    targets = torch.roll(ids, -1)
    with torch.no_grad():
        packed = model(ids[None], targets[None], reduction="none")[0]
        for s, e in zip(starts, (*starts[1:], 24)):
            alone = model(ids[None, s:e], targets[None, s:e], reduction="none")[0]
            torch.testing.assert_close(packed[s:e], alone, rtol=1e-4, atol=1e-4)  # RoPE at other offsets: rounding
        base = load_program(env=ENV)
        plain = base["GPT"](base["Hyperparameters"]())
        plain.load_state_dict(model.state_dict())
        crossing = plain(ids[None], targets[None], reduction="none")[0]
        assert not torch.allclose(crossing[6:], packed[6:], atol=1e-4)  # full attention does see earlier documents


def test_the_mask_is_built_once_per_forward_and_read_by_every_layer():
    ns = load_program(("varlen",), env=ENV)
    build, kernel = ns["VARLEN_KERNELS"]["sdpa"]
    built = []
    ns["VARLEN_KERNELS"]["sdpa"] = (lambda docs: built.append(docs.shape) or build(docs), kernel)
    model = mixing_model(ns)
    ids = packed_row(7)[None]
    model(ids, ids)
    model(ids, ids)
    assert built == [(1, 24), (1, 24)]  # NUM_LAYERS=3, two forwards


def test_it_claims_document_isolation_and_is_refused_beside_bigram_hash(ns, tmp_path):
    from golfc.build import build_submission
    from golfc.errors import GolfcError

    assert ns["DOCUMENT_ISOLATED"] is True and ns["attention_kernel"] is ns["varlen_attention"]
    assert load_program(env=ENV).get("DOCUMENT_ISOLATED") is None
    with pytest.raises(GolfcError, match="cannot be combined with"):
        build_submission(("varlen", "bigram_hash"), {}, tmp_path / "a")
    with pytest.raises(GolfcError, match=r"both fill slot 'attention_kernel'"):
        build_submission(("varlen", "window"), {}, tmp_path / "b")  # one attention kernel


def test_the_adapting_eval_runs_the_document_mask():
    check_adapting_eval_uses_plugin(("varlen",))


@pytest.mark.slow
def test_an_emitted_program_with_varlen_trains_and_scores_on_cpu(tmp_path, tiny_dataset):
    run = run_emitted(("varlen",), tiny_dataset, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "varlen_kernel=auto" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0


@pytest.mark.slow
def test_golfc_verify_passes_the_documents_probe_on_a_varlen_build(tmp_path, tiny_dataset):
    """L18: changing document k-1 leaves document k's scores bit-identical, with the BOS-masked SmearGate too."""
    from golfc.build import build_submission
    from golfc.verify.causality import run_checks

    build_submission(("varlen", "smear_gate"), {}, tmp_path / "build")
    env = {**TINY_RUN_ENV, **tiny_dataset.env(), "VAL_BATCH_SIZE": "2048"}
    results = run_checks(tmp_path / "build" / "train_gpt.py", ["documents", "causality"], workdir=tmp_path / "work",
                         env=env)
    assert {r.name: r.verdict for r in results} == {"documents": "PASS", "causality": "PASS"}, \
        [r.evidence for r in results]
