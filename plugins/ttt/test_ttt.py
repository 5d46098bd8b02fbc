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
    seqs = ns["ttt_sequences"](val, 2, h.ttt_chunk_tokens, h.train_seq_len)  # chunk 2: targets 65 .. 96
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
@pytest.mark.parametrize("mode", ["sgd", "lora", "phased"])
def test_an_emitted_program_with_ttt_trains_scores_and_adapts_on_cpu(tmp_path, tiny_dataset, mode):
    env = {"EVAL_STRIDE": "32", "EVAL_BATCH_SEQS": "8", "TTT_CHUNK_TOKENS": "8192", "TTT_EPOCHS": "1",
           "TTT_BATCH_SEQS": "8", "VAL_LOSS_EVERY": "2", "TTT_MODE": mode, "TTT_LORA_CHUNK": "64",
           "TTT_LORA_RANK": "2", "PHASED_TTT_PREFIX_DOCS": "4", "PHASED_TTT_NUM_PHASES": "2",
           "GLOBAL_TTT_CHUNK_TOKENS": "8192", "GLOBAL_TTT_BATCH_SEQS": "8"}
    run = run_emitted(("sliding_window", "ttt"), tiny_dataset, tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"ttt_mode={mode}" in run.stdout and run.final_bpb is not None and run.final_bpb > 0
    ledger = re.search(r"^score_ledger scored:(\d+) adapted:(\d+) declared:(\d+) violations:(\d+)$", run.stdout, re.M)
    scored, adapted, declared, violations = map(int, ledger.groups())
    assert scored > adapted > 0 and declared > 0 and violations == 0  # chunk 0 / each document's first chunk: none
    if mode == "phased":
        assert re.findall(r"^ttt_phase:(\d) scored_docs:(\d+)", run.stdout, re.M) == [("1", "2"), ("2", "4")]


# --------------------------------------------------------------------------------------------------
# TTT_MODE=lora: per-document adapters, score-first per chunk
# --------------------------------------------------------------------------------------------------
LORA = {**TINY, "TTT_MODE": "lora", "TTT_LORA_RANK": "2", "TTT_LORA_LR": "0.05", "TTT_LORA_CHUNK": "6",
        "TTT_LORA_BATCH": "2"}


@pytest.fixture(scope="module")
def lora_ns():
    return load_program(("sliding_window", "ttt"), env=LORA)


def documents_stream(n=160, seed=3, bos=(0, 37, 49, 100)):
    """Random tokens with a BOS (id 1) at the given places only: by default documents of 37, 12, 51 and 60 tokens."""
    tokens = stream(n, seed)
    tokens[tokens == 1] = 2
    tokens[list(bos)] = 1
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


def final_scores_leaving_the_model_as_it_was(ns, model, val, h):
    """The final evaluation's scores, after checking that it scored every target once and left the model as it
    found it: weights, requires_grad flags, training mode, no adapter hooks."""
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = ns["score_then_train"](model, val, h, cpu_context(ns), True)
    assert sorted(scores.positions.tolist()) == list(range(1, val.numel()))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert not any(m._forward_hooks for m in model.modules())  # the adapters are gone
    return scores


def test_lora_ttt_scores_every_target_once_adapts_and_leaves_the_model_as_it_was(lora_ns):
    h = lora_ns["Hyperparameters"]()
    model = mixing_model(lora_ns)
    val = documents_stream()
    adapted = final_scores_leaving_the_model_as_it_was(lora_ns, model, val, h)
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

    with pytest.raises(HParamError, match=r"TTT_MODE.*expected one of sgd, lora, phased"):
        build_submission(("ttt",), {"TTT_MODE": "global"}, tmp_path)



# --------------------------------------------------------------------------------------------------
# TTT_LORA_TARGETS: which modules the per-document adapters sit on
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def targets_ns():
    return load_program(("sliding_window", "ttt"), env={**LORA, "TTT_LORA_TARGETS": "c_q,c_k,c_v,attn,mlp,head",
                                                         "TTT_LORA_ALPHA": "4", "TTT_BETA1": "0", "TTT_BETA2": "0.99",
                                                         "TTT_WEIGHT_DECAY": "0.5"})


def test_lora_targets_name_linears_sublayers_and_the_head(targets_ns):
    h = targets_ns["Hyperparameters"]()
    sites = targets_ns["ttt_lora_sites"](mixing_model(targets_ns), h)
    shapes = {(name.split(".", 3)[-1], fan_in, fan_out) for name, _, fan_in, fan_out in sites}
    # MODEL_DIM 32, 2 heads, 1 KV head: c_k and c_v are 32 -> 16; attn and mlp run parallel, 32 -> 32
    assert shapes == {("attn.c_q", 32, 32), ("attn.c_k", 32, 16), ("attn.c_v", 32, 16), ("attn", 32, 32),
                      ("mlp", 32, 32), ("head", 32, 64)}
    assert len(sites) == 2 * 5 + 1  # five per block, one head


def test_an_unknown_lora_target_is_one_line_naming_it(targets_ns):
    h = targets_ns["Hyperparameters"]()
    h.ttt_lora_targets = "c_q,wq"
    with pytest.raises(targets_ns["RunInputError"], match=r"TTT_LORA_TARGETS=c_q,wq: 'wq' names no module"):
        targets_ns["ttt_lora_sites"](mixing_model(targets_ns), h)


def test_an_unknown_lora_target_stops_the_run_at_start_up(tmp_path, tiny_dataset):
    """Checked when the model is made (a run_events object), not after training in the final evaluation."""
    env = {"TTT_MODE": "phased", "TTT_LORA_TARGETS": "c_q,wq", "TTT_LORA_CHUNK": "32"}
    run = run_emitted(("ttt",), tiny_dataset, tmp_path, env=env)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: TTT_LORA_TARGETS=c_q,wq: 'wq' names no module")
    assert "step:1/" not in run.stdout  # no training step ran


def test_every_target_starts_as_the_identity_and_then_adapts(targets_ns):
    """B is zero: with a zero rate every score is the plain model's on the same rows (also through the patched
    head and the parallel sublayer adapters); with a rate the later chunks move; nothing stays attached."""
    h = targets_ns["Hyperparameters"]()
    model = mixing_model(targets_ns)
    val = documents_stream()
    adapted = final_scores_leaving_the_model_as_it_was(targets_ns, model, val, h)
    assert "head" not in vars(model)  # GPT.head is the class's again
    h.ttt_lora_lr = 0.0
    frozen = targets_ns["score_then_train"](model, val, h, cpu_context(targets_ns), True)
    x, y, scored, positions = targets_ns["ttt_lora_rows"](val, [(49, 100)], 2, h)
    with torch.no_grad(), targets_ns["bf16_autocast"](torch.device("cpu")):
        nll = model(x, y, reduction="none").float()
    got = dict(zip(frozen.positions.tolist(), frozen.nll.tolist()))
    for p, v in zip(positions[scored].tolist(), nll[scored].tolist()):
        assert got[p] == pytest.approx(v, abs=1e-6)
    moved = dict(zip(adapted.positions.tolist(), adapted.nll.tolist()))
    assert any(moved[p] != got[p] for p in got)


def test_each_target_kind_learns(targets_ns):
    """One Adam step on a chunk's loss gives every adapter's B a gradient (the head's patch and the hooks all reach
    the loss)."""
    h = targets_ns["Hyperparameters"]()
    base = mixing_model(targets_ns)
    sites = targets_ns["ttt_lora_sites"](base, h)
    adapters = [targets_ns["TTTLoRA"]([i, i + 1], fan_in, fan_out, h, torch.device("cpu"))
                for i, (_, _, fan_in, fan_out) in enumerate(sites)]
    for a in adapters:
        torch.nn.init.normal_(a.B, std=0.1)  # so that A gets a gradient too
    undo = targets_ns["ttt_attach_adapters"](base, sites, adapters)
    try:
        x = torch.randint(0, 64, (2, 16))
        base(x, x).backward()
    finally:
        for fn in undo:
            fn()
    assert all(a.A.grad is not None and a.A.grad.abs().sum() > 0 and a.B.grad.abs().sum() > 0 for a in adapters)
    assert adapters[0].scale == 4 / 2  # TTT_LORA_ALPHA / TTT_LORA_RANK


@pytest.mark.parametrize("j", [5, 38, 50, 101, 130])
def test_lora_targets_keep_causality(targets_ns, j):
    h = targets_ns["Hyperparameters"]()
    model = mixing_model(targets_ns)
    assert prefix_violations(targets_ns["score_then_train"], model, documents_stream(), h, cpu_context(targets_ns),
                             j) == []


# --------------------------------------------------------------------------------------------------
# TTT_MODE=phased: per-document LoRA with global SGD at phase boundaries that follow the stream
# --------------------------------------------------------------------------------------------------
PHASED = {**LORA, "TTT_MODE": "phased", "PHASED_TTT_PREFIX_DOCS": "6", "PHASED_TTT_NUM_PHASES": "3",
          "GLOBAL_TTT_LR": "0.05", "GLOBAL_TTT_CHUNK_TOKENS": "32", "GLOBAL_TTT_BATCH_SEQS": "2"}


@pytest.fixture(scope="module")
def phased_ns():
    return load_program(("sliding_window", "ttt"), env=PHASED)


def many_documents_stream():
    """9 documents of 7 to 40 tokens."""
    return documents_stream(200, 5, bos=(0, 30, 37, 77, 90, 112, 140, 151, 180))


def test_phase_boundaries_split_the_prefix_in_stream_order(phased_ns):
    h = phased_ns["Hyperparameters"]()
    docs = [(10 * i, 10 * i + 10) for i in range(10)]
    segments = phased_ns["phased_segments"](docs, h)  # prefix 6 in 3 phases: boundaries after documents 2, 4, 6
    assert [(len(d), last) for d, last in segments] == [(2, 20), (2, 40), (2, 60), (4, None)]
    assert [doc for d, _ in segments for doc in d] == docs
    h.phased_ttt_prefix_docs = 10  # the whole stream: no SGD after the last document
    assert [last for _, last in phased_ns["phased_segments"](docs, h)] == [30, 60, None]
    h.phased_ttt_prefix_docs, h.phased_ttt_num_phases = 2, 3  # more phases than documents: boundaries deduplicated
    assert [(len(d), last) for d, last in phased_ns["phased_segments"](docs, h)] == [(1, 10), (1, 20), (8, None)]
    h.phased_ttt_prefix_docs = 0
    assert phased_ns["phased_segments"](docs, h) == [(docs, None)]


def test_global_sgd_trains_on_targets_up_to_the_boundary_only(phased_ns):
    h = phased_ns["Hyperparameters"]()
    model = mixing_model(phased_ns)
    params = list(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    val = many_documents_stream()
    trained = phased_ns["ttt_global_sgd"](model, params, val, 77, h, cpu_context(phased_ns))
    assert trained == 64  # chunks of 32 targets hold two 16-token sequences; targets 65 .. 77 make no whole one
    assert not any(p.requires_grad for p in params) and all(p.grad is None for p in params)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = mixing_model(phased_ns)
    for p in again.parameters():
        p.requires_grad_(False)
    changed = val.clone()
    changed[65:] = 3  # targets the SGD may not use
    phased_ns["ttt_global_sgd"](again, list(again.parameters()), changed, 77, h, cpu_context(phased_ns))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in again.state_dict().items())


def test_phased_ttt_scores_every_target_once_and_leaves_the_model_as_it_was(phased_ns):
    h = phased_ns["Hyperparameters"]()
    final_scores_leaving_the_model_as_it_was(phased_ns, mixing_model(phased_ns), many_documents_stream(), h)


def test_without_global_steps_phased_is_the_lora_mode_and_with_them_later_phases_move(phased_ns):
    h = phased_ns["Hyperparameters"]()
    val = many_documents_stream()
    phased = phased_ns["score_then_train"](mixing_model(phased_ns), val, h, cpu_context(phased_ns), True)
    h.global_ttt_epochs = 0
    plain = phased_ns["score_then_train"](mixing_model(phased_ns), val, h, cpu_context(phased_ns), True)
    h.ttt_mode = "lora"
    lora = phased_ns["score_then_train"](mixing_model(phased_ns), val, h, cpu_context(phased_ns), True)
    order, lora_order = plain.positions.argsort(), lora.positions.argsort()
    assert torch.equal(plain.nll[order], lora.nll[lora_order])
    a = dict(zip(phased.positions.tolist(), phased.nll.tolist()))
    b = dict(zip(plain.positions.tolist(), plain.nll.tolist()))
    assert all(a[p] == b[p] for p in range(1, 31))  # documents 0 and 1: scored before the first global SGD
    assert any(a[p] != b[p] for p in range(38, 200))  # after it: the base weights moved


def test_the_phased_ledger_says_what_each_score_learned_from(phased_ns):
    h = phased_ns["Hyperparameters"]()
    val = many_documents_stream()
    scores = phased_ns["ledger_scores"](mixing_model(phased_ns), val, h, cpu_context(phased_ns), True)
    assert (scores.seen < scores.positions).all() and scores.updates.max() > 0
    # boundaries after documents 2, 4 and 6 (targets 37, 90, 140); SGD learns whole 16-token sequences of 32-token
    # chunks: up to 32, 80 and 128
    seen_of = dict(zip(scores.positions.tolist(), scores.seen.tolist()))
    assert seen_of[31] == -1 and seen_of[38] == 32 and seen_of[91] == 80 and seen_of[141] == 128
    assert seen_of[181] == 128  # after the last phase no more global SGD


@pytest.mark.parametrize("j", [5, 30, 31, 37, 38, 60, 78, 90, 91, 113, 140, 141, 170])
def test_phased_ttt_changing_tokens_at_and_after_j_leaves_every_earlier_score_bit_identical(phased_ns, j):
    h = phased_ns["Hyperparameters"]()
    model = mixing_model(phased_ns)
    assert prefix_violations(phased_ns["score_then_train"], model, many_documents_stream(), h,
                             cpu_context(phased_ns), j) == []


def test_the_records_length_queue_fails_the_same_probe(phased_ns):
    """tests/leaky/phased_length_queue.py: the prefix chosen longest first trains on late documents before early
    ones are scored."""
    from tests.leaky.phased_length_queue import score_length_queue

    h = phased_ns["Hyperparameters"]()
    model = mixing_model(phased_ns)
    violations = [v for j in (60, 113, 150) for v in prefix_violations(
        lambda *a: score_length_queue(phased_ns, *a), model, many_documents_stream(), h, cpu_context(phased_ns), j)]
    assert violations
