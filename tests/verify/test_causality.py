"""golfc.verify.causality: the probe protocol of emitted programs and the five checks, on tiny CPU builds.

Each leaky fixture (tests/leaky/plugins, a --plugins-dir) must fail the check of its rule; golfc's own evaluation
plugins must pass every check that applies. One probe run is one process of the program (torch's import is
most of its time), so most of these are marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golfc.build import build_submission
from golfc.errors import GolfcError
from golfc.testing import TINY_RUN_ENV, run_emitted
from golfc.verify.causality import CHECKS, RULES, run_checks, static_settings

LEAKY = Path(__file__).resolve().parents[1] / "leaky" / "plugins"
# Plain windows: 4 a forward (2048 tokens over 8 micro-batches of 64); sliding: 16-token stride, 4 a forward;
# TTT chunks of 128 tokens; two SLOT steps. Small enough that a probe run is mostly torch's import.
PROBE_ENV = {**TINY_RUN_ENV, "VAL_BATCH_SIZE": "2048", "EVAL_STRIDE": "16", "EVAL_BATCH_SEQS": "4",
             "TTT_CHUNK_TOKENS": "128", "TTT_BATCH_SEQS": "2", "SLOT_STEPS": "2", "LEAKY_TTT_CHUNK": "128"}
INIT = {"GOLFC_PROBE_TRAIN_STEPS": "0"}  # the seeded initial weights: every fixture leaks through its adaptation


def build(tmp_path: Path, plugins: tuple[str, ...], plugins_dir: Path | None = None) -> Path:
    out = tmp_path / ("-".join(plugins) or "baseline")
    build_submission(plugins, {}, out, plugins_dir=plugins_dir)
    return out / "train_gpt.py"


def verdicts(results) -> dict[str, str]:
    return {r.name: r.verdict for r in results}


def check(tmp_path, dataset, plugins, checks, plugins_dir=None, **env):
    program = build(tmp_path, plugins, plugins_dir)
    return run_checks(program, checks, workdir=tmp_path / "work", env={**PROBE_ENV, **dataset.env(), **env})


# --------------------------------------------------------------------------------------------------
# Bad input, programs without a probe, settings read from the source
# --------------------------------------------------------------------------------------------------
def test_an_unknown_check_or_a_missing_program_is_a_one_line_error(tmp_path):
    program = tmp_path / "train_gpt.py"
    program.write_text("print('hi')\n")
    with pytest.raises(GolfcError, match=r"unknown check 'causal': expected one of causality, normalization"):
        run_checks(program, ["causal"], workdir=tmp_path, env={})
    with pytest.raises(GolfcError, match="no such program"):
        run_checks(tmp_path / "absent.py", ["causality"], workdir=tmp_path, env={})
    assert set(RULES) == set(CHECKS)


def test_a_hand_written_program_without_probe_mode_is_skipped_with_a_reason(tmp_path):
    program = tmp_path / "train_gpt.py"
    program.write_text("import torch\nprint('a hand-written record')\n")
    results = run_checks(program, ["causality", "documents"], workdir=tmp_path, env={})
    assert [(r.name, r.rule, r.verdict) for r in results] == [("causality", "C1", "SKIP"), ("documents", "L18", "SKIP")]
    assert "no probe mode" in results[0].evidence and len(results[0].evidence.splitlines()) == 1


def test_settings_are_read_from_the_shipped_wrapper_under_the_run_environment(tmp_path):
    from golfc.verify.causality import program_texts

    program = build(tmp_path, ("sliding_window",))
    settings = static_settings(program_texts(program), {"TRAIN_SEQ_LEN": "64", "EVAL_STRIDE": "16"})
    assert settings["train_seq_len"] == 64 and settings["eval_stride"] == 16  # from the environment
    assert settings["eval_batch_seqs"] == 32 and settings["tie_embeddings"] is True  # the emitted defaults


# --------------------------------------------------------------------------------------------------
# The probe protocol itself
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_probe_scores_the_validation_stream_exactly_as_the_scored_evaluation(tmp_path, tiny_dataset):
    """Same code path: probing the real artifact on the validation tokens gives the logged roundtrip val_loss."""
    run = run_emitted((), tiny_dataset, tmp_path / "run", env={"VAL_BATCH_SIZE": "2048"})
    assert run.returncode == 0, run.stderr[-2000:]
    logged = float(run.stdout.split("roundtrip_exact val_loss:")[1].split()[0])
    from golfc.data.shards import find_shards, read_shard

    val = read_shard(find_shards(tiny_dataset.data_path, "val")[0])
    val = val[: (len(val) - 1) // 64 * 64 + 1].astype(np.int32)  # cut as the program cuts it
    np.save(tmp_path / "val.npy", val)
    env = {**os.environ, **TINY_RUN_ENV, **tiny_dataset.env(), "VAL_BATCH_SIZE": "2048",
           "GOLFC_PROBE": str(tmp_path / "val.npy"), "GOLFC_PROBE_OUT": str(tmp_path / "p.npz"),
           "GOLFC_PROBE_ARTIFACT": str(tmp_path / "run" / "final_model.int8.ptz"), "GOLFC_PROBE_ROWS": "1,700"}
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path / "run", env=env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = np.load(tmp_path / "p.npz")
    assert (out["scored"][0, 1:] == 1).all() and out["scored"][0, 0] == 0  # every target once, position 0 never
    assert f"{float(np.mean(out['nll'][0, 1:].astype(np.float64))):.8f}" == f"{logged:.8f}"
    rows = out["rows"][0].astype(np.float64)
    assert np.allclose(np.exp(rows).sum(-1), 1.0, atol=1e-5)
    assert np.allclose(-rows[[0, 1], val[[1, 700]]], out["nll"][0, [1, 700]], atol=1e-5)
    assert not out["document_isolated"] and out["world_size"] == 1


@pytest.mark.slow
def test_a_bad_probe_stream_is_a_one_line_error(tmp_path, tiny_dataset):
    program = build(tmp_path, ())
    np.save(tmp_path / "bad.npy", np.array([1.5, 2.5]))
    env = {**os.environ, **TINY_RUN_ENV, **tiny_dataset.env(), "GOLFC_PROBE": str(tmp_path / "bad.npy")}
    proc = subprocess.run([sys.executable, str(program)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: GOLFC_PROBE=") and "expected integer" in proc.stderr


# --------------------------------------------------------------------------------------------------
# Leaky fixtures fail the check of their rule
# --------------------------------------------------------------------------------------------------
LEAKS = [
    pytest.param(("leaky_ttt_train_first",), "causality", id="L1-ttt-train-then-score"),
    pytest.param(("leaky_ttt_last_epoch",), "causality", id="L2-ttt-last-epoch", marks=pytest.mark.slow),
    pytest.param(("sliding_window", "leaky_slot_scored"), "causality", id="L12-slot-on-scored",
                 marks=pytest.mark.slow),
    pytest.param(("leaky_smear_no_bos",), "documents", id="L18-smear-across-bos", marks=pytest.mark.slow),
]  # L13 (shared delta), L7 (n-gram keyed on the target), L8 (unnormalised mixture): the two tests below


def assert_fails_its_rule(result, failing):
    assert (result.name, result.rule, result.verdict) == (failing, RULES[failing], "FAIL"), result.evidence
    assert ("position" in result.evidence and "->" in result.evidence) or "sums to" in result.evidence


@pytest.mark.parametrize(("plugins", "failing"), LEAKS)
def test_each_leaky_fixture_fails_the_check_of_its_rule(tmp_path, tiny_dataset, plugins, failing):
    (result,) = check(tmp_path, tiny_dataset, plugins, [failing], plugins_dir=LEAKY, **INIT)
    assert_fails_its_rule(result, failing)


@pytest.mark.slow
def test_the_shared_delta_slot_fails_causality_and_batch_invariance(tmp_path, tiny_dataset):
    """L13, both checks from one probe of the build: the delta fitted on a whole batch leaks future targets
    into earlier positions (causality), and the scores change with the number of windows per batch."""
    causality, batch = check(tmp_path, tiny_dataset, ("sliding_window", "leaky_slot_shared_delta"),
                             ["causality", "batch"], plugins_dir=LEAKY, **INIT)
    assert_fails_its_rule(causality, "causality")
    assert (batch.rule, batch.verdict) == ("L13", "FAIL") and "batch 4 -> 1 windows" in batch.evidence


def test_each_c2_fixture_fails_its_own_check_and_passes_the_other(tmp_path, tiny_dataset):
    """L7 (n-gram keyed on the target) fails the target check and L8 (unnormalised mixture) the normalisation
    check, each with specific evidence, and each passes the other C2 check: not a blanket failure."""
    keyed = check(tmp_path / "a", tiny_dataset, ("leaky_ngram_target",), ["normalization", "target"],
                  plugins_dir=LEAKY, **INIT)
    unnormalized = check(tmp_path / "b", tiny_dataset, ("leaky_mixture_unnormalized",), ["normalization", "target"],
                         plugins_dir=LEAKY, **INIT)
    assert verdicts(keyed) == {"normalization": "PASS", "target": "FAIL"}
    assert verdicts(unnormalized) == {"normalization": "FAIL", "target": "PASS"}
    assert_fails_its_rule(keyed[1], "target")
    assert_fails_its_rule(unnormalized[0], "normalization")


# --------------------------------------------------------------------------------------------------
# golfc's own evaluation plugins pass
# --------------------------------------------------------------------------------------------------
EVAL_PLUGINS = [pytest.param((), id="baseline")] + [  # the baseline: in the quick subset
    pytest.param(p, id="+".join(p), marks=pytest.mark.slow)
    for p in [("sliding_window",), ("ttt",), ("sliding_window", "slot"), ("sliding_window", "ttt")]
]


@pytest.mark.parametrize("plugins", EVAL_PLUGINS)
def test_golfcs_evaluation_plugins_pass_every_applicable_check(tmp_path, tiny_dataset, plugins):
    results = check(tmp_path, tiny_dataset, plugins, list(CHECKS))
    got = verdicts(results)
    assert got["documents"] == "SKIP"  # none of them claims document isolation
    expected_batch = "WARN" if "ttt" in plugins else "PASS"  # TTT's global batch grows with the ranks
    assert got == {"causality": "PASS", "normalization": "PASS", "target": "PASS", "batch": expected_batch,
                   "documents": "SKIP"}, [r.evidence for r in results]
    if "ttt" in plugins:
        assert "first TTT chunk" in next(r for r in results if r.name == "batch").evidence
    if not plugins:
        assert "bit-identical" in results[0].evidence


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "phased"])
def test_per_document_and_phased_ttt_pass_every_applicable_check(tmp_path, tiny_dataset, mode):
    """The document-ordered TTT modes through the real probes. TTT_CHUNK_TOKENS (unused by these modes) sets the
    probe stream's length: 2 x 1024 + 64 targets hold 5 tiny documents. The records' prefix of 2,500 documents does
    not fit, so the probe takes two thirds of the stream's documents (3) in the same 2 phases and cuts after each
    boundary. Phases follow the stream, so a later token never moves an earlier score
    (tests/leaky/phased_length_queue.py, the records' order, would)."""
    env = {"TTT_MODE": mode, "TTT_LORA_CHUNK": "32", "TTT_LORA_RANK": "2", "TTT_LORA_BATCH": "4",
           "PHASED_TTT_PREFIX_DOCS": "2500", "PHASED_TTT_NUM_PHASES": "2", "GLOBAL_TTT_CHUNK_TOKENS": "128",
           "GLOBAL_TTT_BATCH_SEQS": "2", "TTT_CHUNK_TOKENS": "1024"}
    results = check(tmp_path, tiny_dataset, ("ttt",), list(CHECKS), **INIT, **env)
    got, evidence = verdicts(results), {r.name: r.evidence for r in results}
    # phased: the global SGD's gradients are averaged over the ranks, so 1 -> 2 ranks rounds differently
    batch = "WARN" if mode == "phased" else "PASS"
    assert got == {"causality": "PASS", "normalization": "PASS", "target": "PASS", "batch": batch,
                   "documents": "SKIP"}, evidence
    if mode == "phased":
        assert "rounding only" in evidence["batch"]
        assert "probe runs with PHASED_TTT_PREFIX_DOCS=3 of 2500 (5 documents)" in evidence["causality"]
        starts = [0, *(np.nonzero(np.load(next((tmp_path / "work").rglob("streams.npy")))[0][1:-1] == 1)[0] + 1)]
        cuts = next(r for r in results if r.name == "causality").details["cuts"]
        assert {starts[1] + 1, starts[3] + 1} <= set(cuts)  # after each boundary: documents 1 and 3
        logs = "".join(p.read_text() for p in (tmp_path / "work").rglob("*.txt"))
        assert "ttt_phase:2 scored_docs:3" in logs  # both boundaries inside the probe stream
    else:
        assert "PHASED_TTT_PREFIX_DOCS" not in evidence["causality"]


def test_with_fewer_gpus_than_ranks_the_world_comparison_runs_on_the_cpu(tmp_path, tiny_dataset, monkeypatch):
    """On one GPU a second rank has no device (found on an H100: the 2-rank probe exited 1 and, then, every check
    went unchecked). The world-size comparison runs both sides on the CPU instead, and says so; a world run that
    still fails leaves the batch check a WARN naming the failure, the other checks keep their verdicts."""
    import golfc.verify.causality as causality

    monkeypatch.setattr(causality, "visible_gpus", lambda env: 1)
    monkeypatch.setattr(causality, "CPU_WORLD_WINDOWS", 3)  # the CPU comparison's shorter stream: 64 + 2 * 64 targets
    real_call, spans, extras = causality.Prober.__call__, {}, {}

    def timed_call(self, name, *args, **kwargs):
        start, extras[name] = time.monotonic(), kwargs.get("extra")
        try:
            return real_call(self, name, *args, **kwargs)
        finally:
            spans[name] = (start, time.monotonic())

    monkeypatch.setattr(causality.Prober, "__call__", timed_call)
    program = build(tmp_path, ())
    (batch,) = run_checks(program, ["batch"], workdir=tmp_path / "work", env={**PROBE_ENV, **tiny_dataset.env()})
    assert batch.verdict == "PASS", batch.evidence
    assert "1 -> 2 ranks on the CPU (fewer GPUs than ranks), over the first 192 targets" in batch.evidence
    # verify's overhead: without an artifact the main run trains first, then the batch check's three go side by side
    assert set(spans) == {"streams", "batch", "world-ref", "world"}
    side = [spans[name] for name in ("batch", "world-ref", "world")]
    assert all(start >= spans["streams"][1] for start, _ in side), spans
    assert max(start for start, _ in side) < min(end for _, end in side), spans
    # the three CPU processes share the cores (torchrun alone would give each rank a single thread)
    threads = str(causality.cpu_threads_each(3))
    assert extras["world-ref"]["OMP_NUM_THREADS"] == extras["world"]["OMP_NUM_THREADS"] == threads
    assert causality.cpu_threads_each(3) == max(1, (os.cpu_count() or 1) // 3)
    ref = np.load(next((tmp_path / "work").glob("probe-*-world-ref")) / "probe.npz")
    world = np.load(next((tmp_path / "work").glob("probe-*-world")) / "probe.npz")
    assert ref["world_size"] == 1 and world["world_size"] == 2
    main = np.load(next((tmp_path / "work").glob("probe-*-streams")) / "probe.npz")
    assert ref["nll"].shape[1] == world["nll"].shape[1] == 193 < main["nll"].shape[1]
    assert set(np.unique(world["rank"][0, 1:])) == {0, 1}  # both ranks scored part of the shorter stream

    def no_second_gpu(self, name, *args, **kwargs):
        if name.startswith("world"):
            raise causality.ProbeFailed(f"probe run probe-09-{name} exited 1: RunInputError: LOCAL_RANK=1 needs GPU 1")
        return timed_call(self, name, *args, **kwargs)

    monkeypatch.setattr(causality.Prober, "__call__", no_second_gpu)
    spans.clear()
    artifact = next((tmp_path / "work").glob("probe-*-streams/final_model.*.ptz"))
    results = run_checks(program, ["causality", "batch"], workdir=tmp_path / "work2", artifact=artifact,
                         env={**PROBE_ENV, **tiny_dataset.env()})
    assert verdicts(results) == {"causality": "PASS", "batch": "WARN"}
    streams, other = spans["streams"], spans["batch"]  # with an artifact the main run is one of them
    assert other[0] < streams[1] and streams[0] < other[1], spans
    assert results[1].evidence == ("1 -> 2 ranks not checked: probe run probe-09-world-ref exited 1: "
                                   "RunInputError: LOCAL_RANK=1 needs GPU 1")


def test_a_failed_probe_run_is_named_by_its_error_line_not_torchruns_banner():
    from golfc.verify.causality import failure_line

    torchrun = ("Traceback (most recent call last):\n  File \"train_gpt.py\", line 9\nRunInputError: DEVICE=auto: "
                "LOCAL_RANK=1 needs GPU 1\n[rank1]: failed\n=====================\ntrain_gpt.py FAILED\n"
                "----------\nFailures:\n  <NO_OTHER_FAILURES>\n=====================\n")
    assert failure_line(torchrun) == "RunInputError: DEVICE=auto: LOCAL_RANK=1 needs GPU 1"
    assert failure_line("error: VOCAB_SIZE=x: expected an integer\n") == "error: VOCAB_SIZE=x: expected an integer"
    assert failure_line("just stopped\n=====\n") == "just stopped" and failure_line("") == "no output"


@pytest.mark.slow
def test_under_two_ranks_rank_0_gathers_every_share_and_the_checks_pass(tmp_path, tiny_dataset):
    program = build(tmp_path, ("sliding_window",))
    results = run_checks(program, ["causality", "target"], workdir=tmp_path / "work", nproc=2,
                         env={**PROBE_ENV, **tiny_dataset.env()})
    assert verdicts(results) == {"causality": "PASS", "target": "PASS"}, [r.evidence for r in results]
    out = np.load(next((tmp_path / "work").glob("probe-*-streams")) / "probe.npz")
    assert out["world_size"] == 2 and set(np.unique(out["rank"][0, 1:])) == {0, 1}
    assert (out["scored"][:, 1:] == 1).all()


@pytest.mark.slow
def test_the_masked_smear_passes_the_documents_check(tmp_path, tiny_dataset):
    results = check(tmp_path, tiny_dataset, ("leaky_smear_no_bos",), ["documents", "causality"],
                    plugins_dir=LEAKY, LEAKY_SMEAR_BOS_MASK="1")
    assert verdicts(results) == {"documents": "PASS", "causality": "PASS"}, [r.evidence for r in results]


# --------------------------------------------------------------------------------------------------
# A plugin written outside golfc, against the documented hooks only
# --------------------------------------------------------------------------------------------------
EXTERNAL_BUILD = """
from golfc import HParams, Impl, hookimpl

@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("EXT_TEMPERATURE_STEPS", 0.0, "0: fixed temperature; >0: fitted on the whole batch (a leak)")

@hookimpl
def golfc_eval_adapter():
    return Impl(module="ext_scorer_runtime", symbols="ext_score")
"""
EXTERNAL_RUNTIME = """
import torch
import torch.nn.functional as F


def ext_score(model, val_tokens, h, ctx, final=False):
    # windows from eval_windows, split with rank_share, batched with window_batches, scored through the model's
    # logits with a temperature; with EXT_TEMPERATURE_STEPS > 0 the temperature is fitted on every target
    # of the batch first (the scored ones too), which no probe should let through
    plan = eval_windows(val_tokens, h, ctx)
    gpt = getattr(model, "_orig_mod", model)
    parts = []
    for x, y, batch in window_batches(plan, rank_share(plan.spans, ctx), val_tokens, ctx.device):
        with torch.no_grad():
            logits = gpt.logits(gpt.hidden(x)).float()
        scale = torch.ones((), requires_grad=True)
        for _ in range(int(h.ext_temperature_steps)):
            loss = F.cross_entropy((logits * scale).flatten(0, 1), y.flatten())
            (grad,) = torch.autograd.grad(loss, scale)
            scale = (scale - 0.5 * grad).detach().requires_grad_(True)
        with torch.no_grad():
            logp = F.log_softmax(logits * scale, dim=-1)
            probe_distribution(logp)
            nll = -logp.gather(-1, y[..., None])[..., 0]
        parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device))
    return collect_scores(parts, ctx.device)
"""


@pytest.mark.slow
def test_an_external_plugin_loaded_with_plugins_dir_is_checked_the_same_way(tmp_path, tiny_dataset, plugin_dir):
    root = plugin_dir.add("ext_scorer", EXTERNAL_BUILD, EXTERNAL_RUNTIME)
    legal = check(tmp_path / "legal", tiny_dataset, ("ext_scorer",), ["causality", "normalization", "target"],
                  plugins_dir=root)
    assert verdicts(legal) == {"causality": "PASS", "normalization": "PASS", "target": "PASS"}
    leaky = check(tmp_path / "leaky", tiny_dataset, ("ext_scorer",), ["causality"], plugins_dir=root,
                  EXT_TEMPERATURE_STEPS="3")
    assert leaky[0].verdict == "FAIL" and leaky[0].rule == "C1"
