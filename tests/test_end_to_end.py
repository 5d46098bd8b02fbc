"""Emitted scripts, run for real on CPU: tiny end-to-end training, rebuild identity, tracebacks, 2 ranks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golfc.build import build_submission
from golfc.testing import TINY_RUN_ENV

pytestmark = pytest.mark.slow  # builds and runs emitted programs, several as CPU ranks

FINAL = re.compile(r"^final_int8_zlib_roundtrip_exact val_loss:(\d+\.\d{8}) val_bpb:(\d+\.\d{8})$", re.M)
STEP = re.compile(r"^step:(\d+)/\d+ train_loss:(\d+\.\d+)", re.M)
VAL = re.compile(r"^step:(\d+)/\d+ val_loss:(\d+\.\d+) val_bpb:", re.M)
# The reference's set-up lines, in its order (shared/fixtures/records/2026-03-17_NaiveBaseline/train.log);
# golfc leaves out only sdp_backends (its attention kernel is a plugin that picks a backend per call).
REFERENCE_PREAMBLE = [
    r"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=\S+\.model",
    r"train_loader:dataset:\S+ train_shards:\d+",
    r"val_loader:shards pattern=\S+fineweb_val_\*\.bin tokens:\d+",
    r"model_params:\d+",
    r"world_size:1 grad_accum_steps:8",
    r"attention_mode:gqa num_heads:2 num_kv_heads:1",
    r"tie_embeddings:True embed_lr:0\.05 head_lr:0\.0 matrix_lr:0\.04 scalar_lr:0\.04",
    r"train_batch_tokens:4096 train_seq_len:64 iterations:6 warmup_steps:2 max_wallclock_seconds:0\.000",
    r"seed:1337",
    r"warmup_step:1/2",
]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def tiny_env(dataset, **extra: str) -> dict[str, str]:
    return {**os.environ, **dataset.env(), **TINY_RUN_ENV, **extra}


@pytest.fixture(scope="module")
def baseline_build(tmp_path_factory):
    return build_submission((), {}, tmp_path_factory.mktemp("baseline"))


def test_emitted_baseline_trains_and_evaluates_a_tiny_config(baseline_build, tiny_dataset):
    out = baseline_build.out_dir
    result = run([sys.executable, "train_gpt.py"], out, tiny_env(tiny_dataset, ITERATIONS="6", RUN_ID="e2e"))
    assert result.returncode == 0, result.stderr[-3000:]
    final = FINAL.search(result.stdout)
    assert final, result.stdout[-2000:]
    val_loss, val_bpb = float(final.group(1)), float(final.group(2))
    assert 0 < val_loss < 7 and 0 < val_bpb < 10
    steps = [(int(s), float(loss)) for s, loss in STEP.findall(result.stdout)]
    assert [s for s, _ in steps] == list(range(1, 7)) and steps[-1][1] < steps[0][1]  # it learns
    code_bytes = int(re.search(r"^Code size: (\d+) bytes$", result.stdout, re.M).group(1))
    assert code_bytes == (out / "train_gpt.py").stat().st_size  # the shipped wrapper is what counts
    log = (out / "logs" / "e2e.txt").read_text()
    assert log.startswith("# <golfc:core/prelude>") and "class Hyperparameters" in log  # the log begins with the source
    assert FINAL.search(log)
    preamble = [line for line in log.splitlines() if any(re.fullmatch(p, line) for p in REFERENCE_PREAMBLE)]
    assert len(preamble) == len(REFERENCE_PREAMBLE)
    assert all(re.fullmatch(p, line) for p, line in zip(REFERENCE_PREAMBLE, preamble)), preamble  # in order
    assert (out / "final_model.int8.ptz").is_file() and (out / "final_model.pt").is_file()


def test_readable_source_runs_the_same_program(baseline_build, tiny_dataset):
    out = baseline_build.out_dir
    env = tiny_env(tiny_dataset, ITERATIONS="2", RUN_ID="src")
    wrapped = run([sys.executable, "train_gpt.py"], out, env)
    readable = run([sys.executable, "train_gpt.src.py"], out, env)
    assert wrapped.returncode == readable.returncode == 0, readable.stderr[-2000:]
    assert FINAL.search(wrapped.stdout).groups() == FINAL.search(readable.stdout).groups()


def test_rebuild_is_byte_identical(tmp_path):
    first = build_submission(("muon",), {"NUM_LAYERS": "11"}, tmp_path / "a", minify=True)
    second = build_submission(("muon",), {"NUM_LAYERS": "11"}, tmp_path / "b", minify=True)
    for name in ("train_gpt.py", "train_gpt.src.py", "golfc.lock"):
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name
    assert first.lock["hparams"]["NUM_LAYERS"] == 11
    assert "num_layers = int(os.environ.get('NUM_LAYERS', 11))" in first.readable  # --set became the default


def test_lock_records_plugins_hparams_and_hashes(baseline_build):
    import hashlib
    import json

    lock = json.loads((baseline_build.out_dir / "golfc.lock").read_text())
    assert lock["active"][0] == "core" and "muon" in lock["active"]
    assert [s["name"] for s in lock["sections"]][:3] == ["core/prelude", "core/checks", "hparams"]
    shipped = (baseline_build.out_dir / "train_gpt.py").read_bytes()
    assert lock["files"]["train_gpt.py"]["sha256"] == hashlib.sha256(shipped).hexdigest()
    assert lock["hparams"]["TRAIN_BATCH_TOKENS"] == 524288


def test_minified_build_is_smaller_and_still_trains(tmp_path, tiny_dataset, baseline_build):
    small = build_submission((), {}, tmp_path / "min", minify=True)
    assert small.wrapped_bytes < baseline_build.wrapped_bytes
    result = run([sys.executable, "train_gpt.py"], small.out_dir, tiny_env(tiny_dataset, ITERATIONS="1", RUN_ID="m"))
    assert result.returncode == 0 and FINAL.search(result.stdout), result.stderr[-2000:]


BOOM_BUILD = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_attention_post():
    return Impl(module="boom_runtime", symbols="boom_post")
"""
BOOM_RUNTIME = """
from torch import nn


class boom_post(nn.Module):
    def __init__(self, h, layer):
        super().__init__()
        self.layer = layer

    def forward(self, y, v, x, fctx):
        if self.layer == 1:
            raise RuntimeError(f"boom in layer {self.layer}")
        return y
"""


def test_traceback_inside_a_plugin_section_names_it(tmp_path, tiny_dataset, plugin_dir):
    plugin_dir.add("boom", BOOM_BUILD, BOOM_RUNTIME)
    build = build_submission(("boom",), {}, tmp_path / "boom", plugins_dir=plugin_dir.root)
    result = run([sys.executable, "train_gpt.py"], build.out_dir, tiny_env(tiny_dataset, ITERATIONS="1", RUN_ID="boom"))
    assert result.returncode != 0
    assert 'File "<golfc:plugins/boom>", line 12, in forward' in result.stderr
    assert 'raise RuntimeError(f"boom in layer {self.layer}")' in result.stderr
    assert 'File "<golfc:core/model>"' in result.stderr
    assert "RuntimeError: boom in layer 1" in result.stderr


# Two steps at the full learning rate (no warmdown: with ITERATIONS=2 it would scale the LR by (2 - step)/1200),
# validating after each, so that a mismatch in the first update shows in the validation loss.
SHORT_FULL_LR = {"ITERATIONS": "2", "WARMUP_STEPS": "0", "WARMDOWN_ITERS": "0", "VAL_LOSS_EVERY": "1"}


@pytest.fixture(scope="module")
def single_process_run(baseline_build, tiny_dataset):
    env = tiny_env(tiny_dataset, **SHORT_FULL_LR, RUN_ID="single", OMP_NUM_THREADS="1")
    result = run([sys.executable, "train_gpt.py"], baseline_build.out_dir, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("ranks", [2, 8])  # 4 micro-batches a rank, and none accumulated (4 ranks: between)
def test_cpu_ranks_match_one_process_at_step_one(baseline_build, tiny_dataset, single_process_run, ranks):
    """grad_accum_steps = 8 // WORLD_SIZE keeps the global batch, so step 1 trains on the same tokens.

    The logged train_loss is rank 0's own micro-batches (as in the reference), so the comparison is the
    validation loss over the whole validation set: at step 0 (same initial weights), after step 1 (same
    averaged gradient, up to reduction order) and after step 2.
    """
    env = tiny_env(tiny_dataset, **SHORT_FULL_LR, RUN_ID=f"ranks{ranks}", OMP_NUM_THREADS="1")
    multi = run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                 "train_gpt.py"], baseline_build.out_dir, env)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert f"world_size:{ranks} grad_accum_steps:{8 // ranks}" in multi.stdout
    val_1 = {int(step): float(loss) for step, loss in VAL.findall(single_process_run.stdout)}
    val_n = {int(step): float(loss) for step, loss in VAL.findall(multi.stdout)}
    assert sorted(val_1) == sorted(val_n) == [0, 1, 2]
    assert val_n[0] == pytest.approx(val_1[0], abs=1e-6)
    assert val_n[1] == pytest.approx(val_1[1], abs=2e-3)
    assert val_n[2] == pytest.approx(val_1[2], abs=5e-3)
    assert val_n[1] < val_n[0] - 0.05  # step 1 really trained (full LR), so the match above says something
    bpb_1, bpb_n = float(FINAL.search(single_process_run.stdout).group(2)), float(FINAL.search(multi.stdout).group(2))
    assert abs(bpb_1 - bpb_n) < 2e-2


AGREEMENT_PROBE = """
import os, runpy, sys
import torch.distributed as dist
g = runpy.run_path(sys.argv[1], run_name="golfc_probe")
ctx = g["init_distributed"](g["Hyperparameters"]())
group = g["host_group"](ctx)
seen = [g["max_over_ranks"](1000.0 + 0.25 * ctx.rank, group), g["max_over_ranks"](-1.5, group)]
print(f"rank{ctx.rank} world_group:{group is dist.group.WORLD} seen:{seen}", flush=True)
dist.barrier()
os._exit(0)  # as the program does on CPU: gloo's C++ teardown at exit aborts now and then
"""


def test_ranks_agree_on_the_slowest_ranks_clock(baseline_build, tiny_dataset, tmp_path):
    """The training clock under a cap: every rank reads the largest rank's value (host-side MAX over gloo)."""
    probe = tmp_path / "probe.py"
    probe.write_text(AGREEMENT_PROBE, encoding="utf-8")
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(probe),
                  str(baseline_build.out_dir / "train_gpt.src.py")], tmp_path, tiny_env(tiny_dataset, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):  # CPU runs already use gloo: the default group serves
        assert f"rank{rank} world_group:True seen:[1000.25, -1.5]" in result.stdout


def test_a_two_rank_run_under_a_cap_stops_after_the_step_that_passes_it(baseline_build, tiny_dataset):
    """main()'s capped path with two ranks (the clock agreed after every step) runs to the end; that ranks agree
    when their clocks differ is the probe's test above, and the identical-weights test below."""
    env = tiny_env(tiny_dataset, ITERATIONS="50", MAX_WALLCLOCK_SECONDS="0.000001", RUN_ID="cap2", OMP_NUM_THREADS="1")
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train_gpt.py"],
                 baseline_build.out_dir, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^stopping_early: wallclock_cap train_time:\d+ms step:1/50$", result.stdout, re.M)
    assert FINAL.search(result.stdout)


def test_ranks_hold_identical_weights_under_a_wallclock_schedule(baseline_build, tiny_dataset, tmp_path):
    """With a cap the LR multiplier is a function of the clock; the ranks agree on one clock, so every rank
    applies the same LR and their weights stay equal to the bit (each rank's own clock made them drift)."""
    tool = Path(__file__).resolve().parent.parent / "bench" / "rank_weights.py"
    # WARMDOWN_ITERS this large keeps the whole run in the warmdown: every step's LR reads the clock.
    env = tiny_env(tiny_dataset, ITERATIONS="4", WARMUP_STEPS="0", MAX_WALLCLOCK_SECONDS="600",
                   WARMDOWN_ITERS="1000000", RUN_ID="clock2", OMP_NUM_THREADS="1")
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(tool),
                  "run", str(baseline_build.out_dir / "train_gpt.src.py"), "--keep", "kept"], tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    compared = run([sys.executable, str(tool), "compare", "kept"], tmp_path, env)
    assert compared.returncode == 0 and compared.stdout.strip() == "2 ranks: identical weights", compared.stdout
    import torch

    kept, saved = torch.load(tmp_path / "kept" / "rank0.pt"), torch.load(tmp_path / "final_model.pt")
    assert kept.keys() == saved.keys() and all(torch.equal(kept[k], saved[k]) for k in saved)  # the run's weights


def _corrupt_magic(data_dir: Path) -> None:
    shard = sorted(data_dir.glob("fineweb_val_*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    raw[0:4] = (123).to_bytes(4, "little")
    shard.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("corrupt_shard", r"fineweb_val_000000\.bin: magic 123, expected 20240520"),
        ("vocab_mismatch", r"tokenizer vocab_size is 384, but VOCAB_SIZE=512"),
        ("missing_data", r"no data shards match .*nowhere.*fineweb_train_\*\.bin"),
        ("corrupt_last_train_shard", r"fineweb_train_999999\.bin: version 9, expected 1"),
        ("not_a_tokenizer", r"TOKENIZER_PATH=.*garbage\.model: not a SentencePiece model"),
        ("malformed_number", r"VOCAB_SIZE='1O24': expected an integer"),
    ],
)
def test_bad_run_input_is_one_line_and_exit_2(baseline_build, tiny_dataset, tmp_path, case, expected):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset.data_path, data)
    extra = {"DATA_PATH": str(data), "ITERATIONS": "1", "RUN_ID": case}
    if case == "corrupt_shard":
        _corrupt_magic(data)
    elif case == "vocab_mismatch":
        extra["VOCAB_SIZE"] = "512"
    elif case == "corrupt_last_train_shard":  # found at start-up, not when the stream reaches it
        head = np.zeros(256, dtype="<i4")
        head[:3] = (20240520, 9, 2)
        (data / "fineweb_train_999999.bin").write_bytes(head.tobytes() + np.array([1, 2], dtype="<u2").tobytes())
    elif case == "malformed_number":  # read at import, before main() runs
        extra["VOCAB_SIZE"] = "1O24"
    elif case == "not_a_tokenizer":
        (tmp_path / "garbage.model").write_text("not a model\n")
        extra["TOKENIZER_PATH"] = str(tmp_path / "garbage.model")
    else:
        extra["DATA_PATH"] = str(tmp_path / "nowhere")
    result = run([sys.executable, "train_gpt.py"], baseline_build.out_dir, tiny_env(tiny_dataset, **extra))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert re.search(expected, lines[0])
    assert "warmup_step" not in result.stdout  # no training happened first


CLOB_BUILD = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_attention_post():
    return Impl(module="clob_runtime", symbols="clob_post")
"""
CLOB_RUNTIME = """
_n = 4
_S = "mine"


def clob_post(y, v, layer, h):
    return y


def clob_count():
    return _n, _S
"""


def test_plugin_globals_named_like_loader_temporaries_survive_in_the_shipped_file(tmp_path, plugin_dir):
    """A plugin's top-level _n or _S reads the same in train_gpt.py as in train_gpt.src.py."""
    plugin_dir.add("clob", CLOB_BUILD, CLOB_RUNTIME)
    build = build_submission(("clob",), {}, tmp_path / "clob", plugins_dir=plugin_dir.root)
    shipped = "import train_gpt as t; print(t.clob_count())"
    readable = "ns = {'__name__': 'probe'}; exec(open('train_gpt.src.py').read(), ns); print(ns['clob_count']())"
    for probe in (shipped, readable):
        result = run([sys.executable, "-c", probe], build.out_dir, dict(os.environ))
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == "(4, 'mine')", probe


def test_eval_only_rescores_a_saved_artifact_exactly_and_trains_nothing(baseline_build, tiny_dataset, tmp_path):
    env = tiny_env(tiny_dataset, ITERATIONS="3", RUN_ID="train")
    trained = run([sys.executable, "train_gpt.py"], baseline_build.out_dir, env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    artifact = baseline_build.out_dir / "final_model.int8.ptz"
    rescored = run([sys.executable, "train_gpt.py"], baseline_build.out_dir,
                   {**env, "EVAL_ONLY": str(artifact), "RUN_ID": "eval_only"})
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    assert FINAL.findall(rescored.stdout) == FINAL.findall(trained.stdout)  # the same score, to the last digit
    assert "train_loss" not in rescored.stdout and "warmup_step" not in rescored.stdout
    missing = run([sys.executable, "train_gpt.py"], baseline_build.out_dir,
                  {**env, "EVAL_ONLY": str(tmp_path / "absent.ptz")})
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: EVAL_ONLY={tmp_path / 'absent.ptz'}: no such artifact file"
