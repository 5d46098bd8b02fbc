"""plugins/varlen on a GPU: the compiled FlexAttention document mask against the masked-SDPA reference, forward and
backward, at the baseline's head_dim and a GQA ratio of 2, with documents of many lengths per row (the block mask
built inside the compiled graph from the ids); and a compiled GPT step with VARLEN_KERNEL=auto against the eager
masked model. Skips without CUDA; run on the device machine with `bash bench/device_gpu_tests.sh`."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import attention_leaves, forward_backward, load_program, relative_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

T = 1024
ENV = {"NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": str(T),
       "DEVICE": "cuda"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("varlen",), env=ENV)


def packed_ids(B=4, seed=0, vocab=1024):
    """B rows of documents with lengths from 1 to ~600 tokens: BOS=1 at random starts, nowhere else."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (B, T), generator=g)
    for b in range(B):
        pos = 0
        while pos < T:
            ids[b, pos] = 1
            pos += int(torch.randint(1, 600, (1,), generator=g))
    return ids.cuda()


def test_compiled_flex_document_mask_matches_the_masked_sdpa_reference(ns):
    tensors = attention_leaves(T)

    def flex(q, k, v, ids):
        return ns["masked_flex_attention"](q, k, v, ns["varlen_block_mask"](ns["varlen_documents"](ids)))

    fn = torch.compile(flex, fullgraph=True, dynamic=False)
    for seed in (0, 1):  # other documents, the same shapes: the compiled graph builds the new mask
        ids = packed_ids(seed=seed)
        docs = ns["varlen_documents"](ids)
        expected = forward_backward(
            lambda q, k, v, d=docs: ns["masked_sdpa_attention"](q, k, v, ns["varlen_dense_mask"](d)), tensors)
        actual = forward_backward(lambda q, k, v, i=ids: fn(q, k, v, i), tensors)
        for a, e in zip(actual, expected):
            assert relative_error(a, e) < 2e-2  # bf16 inputs, different accumulation orders


def test_a_compiled_varlen_model_trains_like_the_eager_masked_model(ns):
    torch.manual_seed(0)
    model = ns["GPT"](ns["Hyperparameters"]()).cuda()
    for name, p in model.named_parameters():
        if name.endswith("proj.weight"):
            torch.nn.init.normal_(p, std=0.05)
    ids = packed_ids(B=2, seed=3)
    results = []
    for compiled in (False, True):  # eager: VARLEN_KERNEL=auto takes the masked SDPA; compiled: FlexAttention
        model.zero_grad(set_to_none=True)
        fn = torch.compile(model, fullgraph=True, dynamic=False) if compiled else model
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fn(ids, torch.roll(ids, -1, dims=1))
        loss.backward()
        results.append((loss.item(), [p.grad.float().clone() for p in model.parameters()]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    assert abs(loss_e - loss_c) < 1e-2 * abs(loss_e)
    for a, b in zip(grads_c, grads_e):
        if b.norm() > 0:
            assert relative_error(a, b) < 5e-2
