"""ttt: chunking, score-before-train causality (and a leaky variant that fails it), weights restored, e2e."""

from __future__ import annotations

import re

import pytest
import torch

from golfc.testing import cpu_context, load_program, mixing_model, prefix_violations, run_emitted

TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
        "VOCAB_SIZE": "64", "EVAL_STRIDE": "8", "EVAL_BATCH_SEQS": "4", "TTT_CHUNK_TOKENS": "32",
        "TTT_EPOCHS": "2", "TTT_LR": "0.05", "TTT_BATCH_SEQS": "2", "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def ns():
    return load_program(("sliding_window", "ttt"), env=TINY)


def stream(n=160, seed=3):
    return torch.randint(0, 64, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)


def test_windows_go_to_the_chunk_of_their_first_scored_target(ns):
    spans = ns["sliding_windows"](159, 16, 8)
    chunks = ns["ttt_chunks"](spans, 32)
    assert [k for k, _ in chunks] == sorted({first // 32 for _, first in spans})
    for k, members in chunks:
        assert all(k * 32 <= first < (k + 1) * 32 for _, first in members)
    assert sum(len(m) for _, m in chunks) == len(spans)


def test_a_chunk_trains_on_its_own_targets_only(ns):
    h = ns["Hyperparameters"]()
    val = torch.arange(200, dtype=torch.int32)
    seqs = ns["ttt_sequences"](val, 2, h)  # chunk 2: targets 65 .. 96
    assert seqs.shape == (2, 17)
    assert seqs[0, 1].item() == 65 and seqs[-1, -1].item() == 96


def test_a_chunk_shorter_than_a_sequence_is_refused_at_build(tmp_path):
    from golfc.build import build_submission
    from golfc.errors import HParamError

    with pytest.raises(HParamError, match="TTT_CHUNK_TOKENS=512, TRAIN_SEQ_LEN=1024: expected TTT_CHUNK_TOKENS >="):
        build_submission(("ttt",), {"TTT_CHUNK_TOKENS": "512"}, tmp_path)


def test_the_final_evaluation_adapts_and_scores_every_target_once_and_restores_the_weights(ns):
    h = ns["Hyperparameters"]()
    model = mixing_model(ns)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    val = stream()
    adapted = ns["score_then_train"](model, val, h, cpu_context(ns), True)
    assert sorted(adapted.positions.tolist()) == list(range(1, 160))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # the mode it was called in
    plain = ns["score_then_train"](model, val, h, cpu_context(ns), False)  # not final: sliding windows, no TTT
    sliding = ns["score_plain_windows"](model, val, h, cpu_context(ns))
    assert torch.equal(plain.nll, sliding.nll)
    first_chunk = adapted.positions <= 32  # scored before any update: identical
    assert torch.equal(adapted.nll[first_chunk], plain.nll[first_chunk])
    assert not torch.equal(adapted.nll[~first_chunk], plain.nll[~first_chunk])  # later chunks see TTT


def test_the_score_ledger_says_each_chunk_was_scored_after_training_on_earlier_chunks_only(ns):
    """The ledger (core/data): chunk k's targets carry the optimizer steps taken before them (TTT_EPOCHS x 1 step
    of 2 sequences per earlier chunk) and seen = the last target trained on (chunk k-1's), never their own."""
    h = ns["Hyperparameters"]()
    scores = ns["ledger_scores"](mixing_model(ns), stream(), h, cpu_context(ns), True)
    chunk = (scores.positions - 1) // 32  # TTT_CHUNK_TOKENS=32: chunk k holds targets 32k+1 .. 32(k+1)
    assert torch.equal(scores.updates, chunk * h.ttt_epochs)  # one step per epoch: 2 sequences, TTT_BATCH_SEQS=2
    assert torch.equal(scores.seen, torch.where(chunk > 0, 32 * chunk, -1))  # chunk k-1's last trained target
    assert (scores.seen < scores.positions).all()
    plain = ns["ledger_scores"](mixing_model(ns), stream(), h, cpu_context(ns), False)
    assert not plain.updates.any() and (plain.seen == -1).all()


def test_lora_ledger_rows_learn_from_their_own_documents_earlier_chunks_only(lora_ns):
    h = lora_ns["Hyperparameters"]()
    val = documents_stream()
    scores = lora_ns["ledger_scores"](mixing_model(lora_ns), val, h, cpu_context(lora_ns), True)
    assert sorted(scores.positions.tolist()) == list(range(1, 160))
    for start, end in lora_ns["ttt_documents"](val):
        mine = (scores.positions > start) & (scores.positions <= end)
        chunk = (scores.positions[mine] - start - 1) // 6  # TTT_LORA_CHUNK=6
        seen = scores.seen[mine]
        assert torch.equal(seen, torch.where(chunk > 0, start + 6 * chunk, -1))  # its previous chunk's last target
    assert (scores.seen < scores.positions).all() and scores.updates.max() > 0


@pytest.mark.parametrize("j", [10, 32, 33, 40, 64, 65, 100])  # inside chunks and at their edges
def test_changing_tokens_at_and_after_j_leaves_every_earlier_score_bit_identical(ns, j):
    h = ns["Hyperparameters"]()
    model = mixing_model(ns)
    assert prefix_violations(ns["score_then_train"], model, stream(), h, cpu_context(ns), j) == []


def test_train_then_score_ttt_fails_the_same_probe(ns):
    """The L1 leak (tests/leaky): training on chunk k before scoring it makes earlier targets see later ones."""
    from tests.leaky.ttt_train_then_score import score_after_training

    h = ns["Hyperparameters"]()
    model = mixing_model(ns)
    violations = [v for j in (40, 65, 100) for v in prefix_violations(
        lambda *a: score_after_training(ns, *a), model, stream(), h, cpu_context(ns), j)]
    assert violations


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sgd", "lora"])
def test_an_emitted_program_with_ttt_trains_scores_and_adapts_on_cpu(tmp_path, tiny_dataset, mode):
    env = {"EVAL_STRIDE": "32", "EVAL_BATCH_SEQS": "8", "TTT_CHUNK_TOKENS": "8192", "TTT_EPOCHS": "1",
           "TTT_BATCH_SEQS": "8", "VAL_LOSS_EVERY": "2", "TTT_MODE": mode, "TTT_LORA_CHUNK": "64",
           "TTT_LORA_RANK": "2"}
    run = run_emitted(("sliding_window", "ttt"), tiny_dataset, tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"ttt_mode={mode}" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
    ledger = re.search(r"^score_ledger scored:(\d+) adapted:(\d+) declared:(\d+) violations:(\d+)$", run.stdout, re.M)
    scored, adapted, declared, violations = map(int, ledger.groups())
    assert scored > adapted > 0 and declared > 0 and violations == 0  # chunk 0 / each document's first chunk: none


# --------------------------------------------------------------------------------------------------
# TTT_MODE=lora: per-document adapters, score-first per chunk
# --------------------------------------------------------------------------------------------------
LORA = {**TINY, "TTT_MODE": "lora", "TTT_LORA_RANK": "2", "TTT_LORA_LR": "0.05", "TTT_LORA_CHUNK": "6",
        "TTT_LORA_BATCH": "2"}


@pytest.fixture(scope="module")
def lora_ns():
    return load_program(("sliding_window", "ttt"), env=LORA)


def documents_stream(n=160, seed=3):
    """Random tokens with a BOS (id 1) at a few fixed places: documents of 37, 12, 51 and 60 tokens."""
    tokens = stream(n, seed)
    tokens[tokens == 1] = 2
    tokens[[0, 37, 49, 100]] = 1
    return tokens


def test_documents_start_at_bos_and_own_the_next_bos_as_their_last_target(lora_ns):
    assert lora_ns["ttt_documents"](documents_stream()) == [(0, 37), (37, 49), (49, 100), (100, 159)]
    assert lora_ns["ttt_documents"](torch.tensor([5, 6, 1, 7, 8], dtype=torch.int32)) == [(0, 2), (2, 4)]


def test_a_rows_context_depends_on_its_start_and_chunk_only(lora_ns):
    h = lora_ns["Hyperparameters"]()
    val = torch.arange(200, dtype=torch.int32)
    x, y, scored, positions = lora_ns["ttt_lora_rows"](val, [(10, 60), (70, 75)], 3, h)  # chunk 3: targets 29..34
    assert x[0, 0].item() == 10 + 4 * 6 - 16 and positions[0][scored[0]].tolist() == list(range(29, 35))
    assert torch.equal(y[0][scored[0]], val[29:35].long())
    assert not scored[1].any()  # the second document has one chunk only


def test_lora_ttt_scores_every_target_once_adapts_and_leaves_the_model_as_it_was(lora_ns):
    h = lora_ns["Hyperparameters"]()
    model = mixing_model(lora_ns)
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    val = documents_stream()
    adapted = lora_ns["score_then_train"](model, val, h, cpu_context(lora_ns), True)
    assert sorted(adapted.positions.tolist()) == list(range(1, 160))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert not any(m._forward_hooks for m in model.modules())  # the adapters are gone
    h.ttt_lora_lr = 0.0  # adapters that never move: B stays zero, the model's own scores
    frozen = lora_ns["score_then_train"](model, val, h, cpu_context(lora_ns), True)
    by_position = dict(zip(adapted.positions.tolist(), adapted.nll.tolist()))
    unadapted = dict(zip(frozen.positions.tolist(), frozen.nll.tolist()))
    first_chunks = [p for s, _ in lora_ns["ttt_documents"](val) for p in range(s + 1, s + 7)]
    assert all(by_position[p] == unadapted[p] for p in first_chunks)  # scored before any step of their document
    assert any(by_position[p] != unadapted[p] for p in by_position if p not in first_chunks)  # later chunks adapt


def test_lora_ttt_without_steps_equals_the_plain_model_on_each_documents_rows(lora_ns):
    h = lora_ns["Hyperparameters"]()
    h.ttt_lora_lr = 0.0
    model = mixing_model(lora_ns)
    val = documents_stream()
    scores = lora_ns["score_then_train"](model, val, h, cpu_context(lora_ns), True)
    got = dict(zip(scores.positions.tolist(), scores.nll.tolist()))
    x, y, scored, positions = lora_ns["ttt_lora_rows"](val, [(49, 100)], 2, h)  # document 3, chunk 2
    with torch.no_grad(), lora_ns["bf16_autocast"](torch.device("cpu")):  # as the evaluation runs
        nll = model(x, y, reduction="none").float()
    for p, v in zip(positions[scored].tolist(), nll[scored].tolist()):
        assert got[p] == pytest.approx(v, abs=1e-6)


@pytest.mark.parametrize("j", [5, 30, 37, 38, 50, 56, 99, 101, 130])  # inside documents, chunks, at their edges
def test_lora_ttt_changing_tokens_at_and_after_j_leaves_every_earlier_score_bit_identical(lora_ns, j):
    h = lora_ns["Hyperparameters"]()
    model = mixing_model(lora_ns)
    assert prefix_violations(lora_ns["score_then_train"], model, documents_stream(), h, cpu_context(lora_ns), j) == []


def test_an_unknown_ttt_mode_is_refused_at_build(tmp_path):
    from golfc.build import build_submission
    from golfc.errors import HParamError

    with pytest.raises(HParamError, match=r"TTT_MODE.*expected one of sgd, lora"):
        build_submission(("ttt",), {"TTT_MODE": "phased"}, tmp_path)
