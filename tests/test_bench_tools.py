"""The bench/ tools whose logic results depend on: the paced clock and the profiler's kernel classes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from golfc.build import build_submission
from golfc.testing import TINY_RUN_ENV

BENCH = Path(__file__).resolve().parent.parent / "bench"
ROOT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def load_bench_module(name: str) -> ModuleType:
    """A bench/ tool as a module, registered in sys.modules (dataclasses resolve their module through it)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_dilated_clock_runs_pace_times_faster_and_keeps_the_rest_of_time(monkeypatch):
    paced_run = load_bench_module("paced_run")
    readings = iter([100.0, 101.0, 103.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(readings))
    clock = paced_run.dilated_time_module(2.5)  # starts at the real 100.0
    assert clock.perf_counter() == pytest.approx(102.5)  # 1 real second reads as 2.5
    assert clock.perf_counter() == pytest.approx(107.5)
    assert clock.time is time.time and clock.sleep is time.sleep


@pytest.mark.slow  # runs an emitted program
def test_paced_run_stops_the_program_at_its_virtual_cap(tmp_path, tiny_dataset):
    out = build_submission((), {}, tmp_path).out_dir
    env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV,
           "ITERATIONS": "1000", "MAX_WALLCLOCK_SECONDS": "30", "RUN_ID": "paced"}
    # 30 virtual seconds at x100000 are 0.3 real ms: any CPU step is longer, so the cap ends step 1.
    result = subprocess.run([sys.executable, str(BENCH / "paced_run.py"), "--pace", "100000", "train_gpt.src.py"],
                            cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("paced_run: perf_counter dilated x100000")
    assert re.search(r"^stopping_early: wallclock_cap train_time:\d+ms step:1/1000$", result.stdout, re.M)
    assert re.search(r"^final_int8_zlib_roundtrip_exact val_loss:\d+\.\d+ val_bpb:\d+\.\d+$", result.stdout, re.M)


def test_paced_run_rejects_a_pace_that_is_not_positive(tmp_path):
    program = tmp_path / "p.py"
    program.write_text("def main():\n    pass\n")
    result = subprocess.run([sys.executable, str(BENCH / "paced_run.py"), "--pace", "0", str(program)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--pace 0.0: expected a positive number" in result.stderr


def test_paced_run_reports_bad_run_input_in_one_line(tmp_path):
    out = build_submission((), {}, tmp_path).out_dir
    env = {**os.environ, **TINY_RUN_ENV, "DATA_PATH": str(tmp_path / "nowhere"), "ITERATIONS": "1"}
    result = subprocess.run([sys.executable, str(BENCH / "paced_run.py"), "--pace", "2", "train_gpt.src.py"],
                            cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no data shards match"), result.stderr[-2000:]


@pytest.mark.parametrize(("kernel", "kind"), [
    ("triton_poi_fused__to_copy__unsafe_view_pow_relu_10", "triton fused"),  # a Triton kernel named after a copy
    ("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_26", "attention"),
    ("void cudnn::fusion::compute_dot_do_o_specialized<true, 64>(void const*)", "attention"),
    ("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT", "matmul"),
    ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "nccl"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
    ("Memcpy HtoD (Pinned -> Device)", "copy/cast"),
    ("void at::native::reduce_kernel<128, 4>", "other"),
])
def test_profiler_kernel_classes(kernel, kind):
    assert load_bench_module("profile_step").kernel_kind(kernel) == kind


@pytest.mark.parametrize("variant", ["attn_bhtd", "fused_qkv"])
def test_attention_variants_compute_the_same_attention_as_the_program(variant, tmp_path, monkeypatch):
    """The profiler's attention candidates change where tensors live or how many matmuls run, not the values."""
    import torch

    for name, value in {**TINY_RUN_ENV, "NUM_HEADS": "4", "NUM_KV_HEADS": "2"}.items():
        monkeypatch.setenv(name, value)
    program_path = build_submission((), {}, tmp_path).out_dir / "train_gpt.src.py"
    profile_step = load_bench_module("profile_step")
    program = profile_step.exec_program(program_path, "golfc_test")
    h = program["Hyperparameters"]()
    torch.manual_seed(0)
    attn = program["CausalSelfAttention"](h, 0)
    with torch.no_grad():
        attn.proj.weight.normal_()  # zero-initialised: would hide everything before it
    x = torch.randn(3, h.train_seq_len, h.model_dim)
    expected = attn(x)
    profile_step.VARIANTS[variant](program)
    actual = attn(x)
    assert actual.shape == expected.shape == x.shape
    if variant == "attn_bhtd":  # the same operations on the same values: bit-identical
        assert torch.equal(actual, expected)
    else:  # one matmul over concatenated weights may round differently from three
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)


def test_one_rank_of_eight_does_one_micro_batch_of_the_same_size_and_an_eighth_of_muon(tmp_path, monkeypatch):
    """profile_step --rank-of 8: the per-GPU micro-batch stays what it is on eight GPUs, one per step, and Muon
    orthogonalises only rank 0's matrices (no process group: communication is left out)."""
    for name, value in TINY_RUN_ENV.items():
        monkeypatch.setenv(name, value)
    program_path = build_submission((), {}, tmp_path).out_dir / "train_gpt.src.py"
    profile_step = load_bench_module("profile_step")
    shapes = {}
    for rank_of in (1, 8):
        program = profile_step.exec_program(program_path, "golfc_test")
        program["_profile_rank_of"] = rank_of
        step = profile_step.build_step(program)
        muon = [opt for opt in step.optimizers if hasattr(opt, "world_size")]
        assert len(muon) == 1 and (muon[0].world_size, muon[0].rank, muon[0].distributed) == (rank_of, 0, False)
        shapes[rank_of] = (step.rows, step.micro_batches)
    rows_1, micro_1 = shapes[1]
    assert micro_1 == 8 and shapes[8] == (rows_1, 1)


def test_the_per_matrix_muon_variant_takes_the_same_steps_as_the_program(tmp_path, monkeypatch):
    """The profiler's per-matrix Muon (the form before session 5) launches the update differently, same bits."""
    variant = "muon_per_matrix"
    import torch

    for name, value in TINY_RUN_ENV.items():
        monkeypatch.setenv(name, value)
    program_path = build_submission((), {}, tmp_path).out_dir / "train_gpt.src.py"
    profile_step = load_bench_module("profile_step")
    results = []
    for patch in ("base", variant):
        program = profile_step.exec_program(program_path, "golfc_test")
        profile_step.VARIANTS[patch](program)
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(8, 16), (16, 8), (8, 8), (12, 8)]]
        ctx = program["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
        opt = program["Muon"](params, lr=0.1, momentum=0.9, backend_steps=5, ctx=ctx)
        for seed in (1, 2):
            torch.manual_seed(seed)
            for p in params:
                p.grad = torch.randn_like(p)
            opt.step()
        results.append([p.detach().clone() for p in params])
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.slow  # runs an emitted program
def test_dist_step_times_every_variant_on_two_cpu_ranks(tmp_path):
    """bench/dist_step.py on gloo: each GRADS+STOP variant builds, steps and reports every rank's time."""
    out = build_submission((), {}, tmp_path / "build").out_dir
    env = {**os.environ, **TINY_RUN_ENV, "VOCAB_SIZE": "512", "OMP_NUM_THREADS": "1"}
    report = tmp_path / "dist.json"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(BENCH / "dist_step.py"),
         str(out / "train_gpt.src.py"), "--variants", "ddp+gloo,manual+nccl,none+none", "--warmup", "1", "--steps", "2",
         "--json", str(report)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(report.read_text())
    assert (data["device"], data["world_size"], data["accum"]) == ("cpu", 2, 1)
    assert [r["variant"] for r in data["runs"]] == ["ddp+gloo", "manual+nccl", "none+none"]
    for r in data["runs"]:
        assert len(r["per_rank_ms"]) == 2 and r["ms_per_step"] == max(r["per_rank_ms"]) > 0
        assert re.search(rf"^{re.escape(r['variant'])} +\d+\.\d\d ms/step \(slowest rank", result.stdout, re.M)


@pytest.mark.parametrize("text", ["ddp", "ddp+nccl,fsdp+none", "manual+mpi"])
def test_dist_step_rejects_a_variant_it_does_not_know(text):
    dist_step = load_bench_module("dist_step")
    with pytest.raises(ValueError, match="expected GRADS\\+STOP"):
        dist_step.parse_variants(text)
    assert dist_step.parse_variants("ddp+gloo,none+none") == [("ddp", "gloo"), ("none", "none")]


def test_rank_weights_compare_names_each_differing_tensor_and_fails(tmp_path):
    import torch

    rank_weights = load_bench_module("rank_weights")
    base = {"a": torch.zeros(3), "b": torch.ones(2)}
    torch.save(base, tmp_path / "rank0.pt")
    torch.save({"a": torch.zeros(3), "b": torch.tensor([1.0, 1.5])}, tmp_path / "rank1.pt")
    torch.save(base, tmp_path / "rank10.pt")  # rank order is numeric, not by name
    assert rank_weights.compare(tmp_path) == [("b", 1, 0.5)]
    result = subprocess.run([sys.executable, str(BENCH / "rank_weights.py"), "compare", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["rank 1 differs from rank 0 in b: max |diff| 5.000e-01",
                                          "3 ranks: 1 tensors differ"]
    (tmp_path / "rank1.pt").unlink()
    (tmp_path / "rank10.pt").unlink()
    with pytest.raises(SystemExit, match=re.escape("expected rank<r>.pt files of two or more ranks, found 1")):
        rank_weights.compare(tmp_path)


@pytest.mark.slow  # runs an emitted program, once per setting
@pytest.mark.parametrize("gc_freeze", [False, True])
def test_shape_run_gives_each_rank_the_micro_batches_asked_for(tmp_path, tiny_dataset, gc_freeze):
    out = build_submission((), {}, tmp_path).out_dir
    env = {**os.environ, **tiny_dataset.env(), **TINY_RUN_ENV, "ITERATIONS": "3", "RUN_ID": "shape",
           "OMP_NUM_THREADS": "1"}
    flags = ["--gc-freeze"] if gc_freeze else []
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(BENCH / "shape_run.py"), "--accum", "1", *flags, "train_gpt.src.py"],
        cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size:2 grad_accum_steps:1" in result.stdout  # the program alone would use 4
    assert re.search(r"^step:3/3 train_loss:\d+\.\d+", result.stdout, re.M)
    assert re.search(r"^final_int8_zlib_roundtrip_exact val_loss:\d+\.\d+ val_bpb:\d+\.\d+$", result.stdout, re.M)


def test_shape_run_rejects_an_accum_below_one(tmp_path):
    result = subprocess.run([sys.executable, str(BENCH / "shape_run.py"), "--accum", "0", str(tmp_path / "p.py")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--accum 0: expected a positive integer" in result.stderr


PARITY_LOG = """\
step:1/300 train_loss:6.9042 train_time:310ms step_avg:310.00ms
step:2/300 train_loss:6.6275 train_time:620ms step_avg:310.00ms
step:300/300 train_loss:2.1527 train_time:92616ms step_avg:308.72ms
step:300/300 val_loss:2.4911 val_bpb:1.4763 train_time:92616ms step_avg:308.72ms
peak memory allocated: 10940 MiB reserved: 11204 MiB
Serialized model: 67224983 bytes
Serialized model int8+zlib: 8415322 bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)
final_int8_zlib_roundtrip val_loss:2.5620 val_bpb:1.5183 eval_time:1500ms
final_int8_zlib_roundtrip_exact val_loss:2.56200000 val_bpb:1.51830000
"""


def test_parity_reads_the_figures_of_a_run_from_its_console():
    parity = load_bench_module("parity")
    run = parity.parse_run_log(PARITY_LOG)
    assert run.train_loss == {1: 6.9042, 2: 6.6275, 300: 2.1527}
    assert (run.ms_step, run.prequant_bpb, run.roundtrip_bpb) == (308.72, 1.4763, 1.5183)
    assert (run.artifact_bytes, run.peak_mib) == (8415322, 10940)  # the compressed artifact, not the raw .pt


def test_parity_cudnn_variant_swaps_the_reference_switches_and_refuses_a_script_without_them():
    parity = load_bench_module("parity")
    script = "x = 1\n    enable_cudnn_sdp(False)\n    enable_flash_sdp(True)\ny = 2\n"
    variant = parity.cudnn_variant(script)
    assert "enable_cudnn_sdp(True)\n    enable_flash_sdp(False)" in variant and variant.startswith("x = 1")
    with pytest.raises(parity.ParityError, match="expected its lines"):
        parity.cudnn_variant("print('no switches')\n")
    reference = ROOT_SHARED / "reference" / "train_gpt.py"
    if reference.is_file():  # the real script has the two lines exactly once
        assert parity.cudnn_variant(reference.read_text()).count("enable_flash_sdp(False)") == 1


def test_parity_weight_differences_map_golfc_names_and_put_the_largest_first():
    import torch

    parity = load_bench_module("parity")
    reference = {"tok_emb.weight": torch.ones(2, 2), "blocks.0.attn.q_gain": torch.full((4,), 2.0),
                 "skip_weights": torch.ones(1, 2), "lost": torch.zeros(1)}
    golfc = {"tok_emb.weight": torch.ones(2, 2), "stack.blocks.0.attn.q_gain": torch.tensor([2.0, 2.0, 2.5, 2.0]),
             "stack.skip_weights": torch.tensor([[1.0, 1.25]])}
    rows = parity.weight_differences(reference, golfc)
    assert [r["tensor"] for r in rows] == ["blocks.0.attn.q_gain", "skip_weights", "tok_emb.weight", "lost"]
    assert rows[0]["golfc"] == "stack.blocks.0.attn.q_gain" and rows[0]["max_abs"] == 0.5 and rows[0]["max_rel"] == 0.25
    assert rows[2]["max_abs"] == 0.0 and rows[3]["golfc"] is None
    with pytest.raises(parity.ParityError, match="reference shape"):
        parity.weight_differences({"tok_emb.weight": torch.ones(2)}, {"tok_emb.weight": torch.ones(3)})


def test_parity_runs_a_golfc_build_and_writes_its_figures(tmp_path, tiny_dataset):
    parity = load_bench_module("parity")
    build = build_submission((), {}, tmp_path / "build").out_dir
    env = [f"--env={k}={v}" for k, v in TINY_RUN_ENV.items() if k not in ("ITERATIONS",)]
    out = tmp_path / "parity.json"
    code = parity.main(["--build", str(build), "--reference", str(tmp_path / "absent.py"),
                        "--data", str(tiny_dataset.data_path), "--tokenizer", str(tiny_dataset.tokenizer_path),
                        "--vocab", str(tiny_dataset.vocab_size), "--steps", "2", "--programs", "golfc",
                        "--work", str(tmp_path / "work"), "--json", str(out), *env])
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["steps"] == 2 and set(figures["golfc"]["train_loss"]) == {"1", "2"}
    assert figures["golfc"]["roundtrip_bpb"] > 0 and figures["golfc"]["artifact_bytes"] > 0
    assert (tmp_path / "work" / "golfc" / "final_model.pt").is_file()


RECORD_LOG_TAIL = """\
step:100/100 train_loss:3.1000 train_time:70000ms step_avg:700.00ms
step:100/100 val_loss:3.2000 val_bpb:1.9000 train_time:70000ms step_avg:700.00ms
final_int6_roundtrip_exact val_loss:3.30000000 val_bpb:1.95000000
final_int6_sliding_window_exact val_loss:3.25000000 val_bpb:1.92000000
final_int8_zlib_roundtrip_exact val_loss:3.25000000 val_bpb:1.92000000
"""


RECORD_1855_LOG = """\
  train_batch_tokens: 786432
  ttt_enabled: True
1/60 train_loss: 9.0087 train_time: 0.0m tok/s: 17921784
60/60 train_loss: 4.1000 train_time: 1.2m tok/s: 655360
60/60 val_loss: 4.2000 val_bpb: 2.5000
peak memory allocated: 41717 MiB reserved: 47140 MiB
diagnostic pre-quantization post-ema val_loss:4.10000000 val_bpb:2.45000000 eval_time:6718ms
Serialized model quantized+brotli: 15865260 bytes
diagnostic quantized val_loss:4.30000000 val_bpb:2.55000000 eval_time:49995ms
quantized_ttt_phased val_loss:4.00000000 val_bpb:2.40000000 eval_time:508785ms
"""


def test_parity_keeps_a_timed_console_and_stops_a_program_at_its_timeout(tmp_path, capsys):
    """Each console line is kept with the second it arrived; a program past --timeout is stopped with its whole
    process group (here a child that holds the console pipe, as inductor's compile workers do), and what it printed
    until then stays in both console files (where a long run spent its time is the point of the timed one)."""
    parity = load_bench_module("parity")
    slow = tmp_path / "slow.py"
    slow.write_text("import subprocess, sys, time\n"
                    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                    "print('step:1/2 train_loss:6.0 train_time:1ms step_avg:1.00ms', flush=True)\n"
                    "time.sleep(30)\n")
    started = time.perf_counter()
    code = parity.main(["--build", str(tmp_path), "--reference", str(slow), "--data", "d", "--tokenizer", "t",
                        "--programs", "reference", "--timeout", "3", "--work", str(tmp_path / "work")])
    assert code == 2 and time.perf_counter() - started < 20
    assert "reference: did not finish within 3 s" in capsys.readouterr().err
    folder = tmp_path / "work" / "reference"
    assert (folder / "console.log").read_text() == "step:1/2 train_loss:6.0 train_time:1ms step_avg:1.00ms\n"
    timed = (folder / "console_timed.log").read_text()
    assert re.fullmatch(r" *\d+\.\ds \| step:1/2 train_loss:6\.0 .*\n", timed)


def test_parity_reads_the_04_27_records_own_log_lines():
    """PR #1855's script logs without "step:" and in minutes: its train losses, the last step's (pre-EMA) score,
    the test-time-trained final score, and ms/step from tokens per second over the batch (786,432 / 655,360 /s)."""
    parity = load_bench_module("parity")
    run = parity.parse_run_log(RECORD_1855_LOG)
    assert run.train_loss == {1: 9.0087, 60: 4.1}
    assert (run.prequant_bpb, run.roundtrip_bpb, run.ms_step) == (2.5, 2.4, 1200.0)
    assert (run.artifact_bytes, run.peak_mib) == (15865260, 41717)


def test_parity_runs_a_record_script_with_its_own_env_and_reads_its_final_score(tmp_path, capsys):
    """A record's script (the 03-22 record's log lines) as the reference: --reference-env reaches it alone, the
    score read is its last final_*_exact line (the one the challenge reads), and --no-weights skips the tensors."""
    parity = load_bench_module("parity")
    record = tmp_path / "record.py"
    record.write_text("import os, sys\n"
                      "if os.environ.get('SHIM') != 'on': sys.exit('the record needs its shim')\n"
                      f"print({RECORD_LOG_TAIL!r})\n")
    out = tmp_path / "record.json"
    code = parity.main(["--build", str(tmp_path), "--reference", str(record), "--data", "d", "--tokenizer", "t",
                        "--steps", "100", "--programs", "reference", "--reference-env", "SHIM=on", "--no-weights",
                        "--work", str(tmp_path / "work"), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    figures = json.loads(out.read_text())["reference"]
    assert (figures["ms_step"], figures["prequant_bpb"], figures["roundtrip_bpb"]) == (700.0, 1.9, 1.92)
    code = parity.main(["--build", str(tmp_path), "--reference", str(record), "--data", "d", "--tokenizer", "t",
                        "--programs", "reference", "--golfc-env", "SHIM=on", "--work", str(tmp_path / "work")])
    assert code == 2 and "the record needs its shim" in capsys.readouterr().err  # golfc's env is not the record's


def test_parity_merge_puts_programs_of_two_calls_side_by_side_and_refuses_other_schedules(tmp_path, capsys):
    """A pair that outruns one device call runs as two (one program each); `merge` joins their JSON files into one
    side-by-side result with the deltas and the speed ratio, and refuses files of another schedule, a program twice,
    or a file that is not parity's."""
    parity = load_bench_module("parity")
    record = tmp_path / "record.py"
    record.write_text(f"print({RECORD_LOG_TAIL!r})\n")
    build = tmp_path / "build"
    build.mkdir()
    (build / "train_gpt.py").write_text(f"print({RECORD_LOG_TAIL.replace('700.00ms', '560.00ms').replace('1.92', '1.90')!r})\n")
    common = ["--build", str(build), "--reference", str(record), "--data", "d", "--tokenizer", "t", "--no-weights",
              "--work", str(tmp_path / "work")]
    for name, steps in (("reference", "100"), ("golfc", "100"), ("other", "50")):
        program = "golfc" if name == "other" else name
        assert parity.main([*common, "--programs", program, "--steps", steps, "--json", str(tmp_path / f"{name}.json")]) == 0
    out = tmp_path / "both.json"
    assert parity.main(["merge", str(tmp_path / "reference.json"), str(tmp_path / "golfc.json"), "--json", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["steps"] == 100 and merged["speedup_vs_reference"] == 1.25
    assert merged["golfc_minus_reference"]["roundtrip_bpb"] == -0.02 and merged["golfc_minus_reference"]["train_loss"] == {"100": 0.0}
    assert merged["merged_from"] == [str(tmp_path / "reference.json"), str(tmp_path / "golfc.json")]
    capsys.readouterr()
    (tmp_path / "junk.json").write_text("not json")
    for files, message in (
            (["reference.json", "other.json"], "steps 50, but"),
            (["reference.json", "reference.json"], "reference is already in an earlier file"),
            (["junk.json"], "expected a JSON file written by parity.py --json")):
        assert parity.main(["merge", *(str(tmp_path / f) for f in files)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--programs", "golfc,nope"], "--programs 'golfc,nope': expected names from reference, reference_cudnn, golfc"),
    (["--programs", "golfc"], "no train_gpt.py there, expected a golfc build folder"),
    (["--programs", "reference"], "no such file, expected the official train_gpt.py"),
    (["--programs", "golfc", "--env", "NOEQUALS", "--build", "BUILT"], "--env 'NOEQUALS': expected NAME=VALUE"),
    (["--programs", "golfc", "--reference-env", "=x", "--build", "BUILT"], "--reference-env '=x': expected NAME=VALUE"),
    (["--programs", "golfc", "--steps", "0", "--build", "BUILT"], "--steps 0: expected a positive number of steps"),
])
def test_parity_rejects_bad_input_in_one_line(tmp_path, capsys, args, message):
    parity = load_bench_module("parity")
    built = tmp_path / "built"
    built.mkdir()
    (built / "train_gpt.py").write_text("raise SystemExit('never run')\n")
    args = [str(built) if a == "BUILT" else a for a in args]
    code = parity.main(["--build", str(tmp_path), "--reference", str(tmp_path / "absent.py"),
                        "--data", "d", "--tokenizer", "t", *args])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.slow
def test_artifact_schemes_trains_once_and_exports_each_scheme(tmp_path, tiny_dataset):
    """bench/artifact_schemes.py on CPU: one training run, two schemes re-exported from its final_model.pt."""
    tool = load_bench_module("artifact_schemes")
    env = [f"{k}={v}" for k, v in TINY_RUN_ENV.items() if k != "MAX_WALLCLOCK_SECONDS"]
    results = tool.main(["--data", str(tiny_dataset.data_path), "--tokenizer", str(tiny_dataset.tokenizer_path),
                         "--vocab", str(tiny_dataset.vocab_size), "--steps", "3", "--work", str(tmp_path / "w"),
                         "--schemes", "int8_zlib,gptq_int6_zstd", "--json", str(tmp_path / "r.json"),
                         *[x for e in env for x in ("--env", e)], "--env", "QUANT_KEEP_FLOAT_NUMEL=1024",
                         "--env", "GPTQ_CALIB_BATCHES=2"])
    assert json.loads((tmp_path / "r.json").read_text()) == results
    int8, gptq = results["schemes"]["int8_zlib"], results["schemes"]["gptq_int6_zstd"]
    train_log = (tmp_path / "w" / "train.log").read_text()
    # the int8 re-export of the trained weights is the training run's own artifact, to the byte and the digit
    assert int8["artifact_bytes"] == int(re.search(r"Serialized model int8\+zlib: (\d+) bytes", train_log)[1])
    assert f"val_bpb:{int8['roundtrip_val_bpb']:.8f}" in train_log
    assert gptq["calibration_seconds"] is not None and gptq["artifact_bytes"] > 0 and gptq["roundtrip_val_bpb"] > 0
    assert "| gptq_int6_zstd |" in tool.table(results)


DESIGN_CARD_LOG = """\
warmup_step:3/3
step:120/120 val_loss:3.1234 val_bpb:1.8500 train_time:28800ms step_avg:240.00ms
peak memory allocated: 10302 MiB reserved: 11000 MiB
Serialized model int8+zlib: 8123456 bytes (payload:1 raw_torch:2 payload_ratio:3.00x)
final_int8_zlib_roundtrip val_loss:3.2000 val_bpb:1.8954 eval_time:12345ms
final_int8_zlib_roundtrip_exact val_loss:3.20001234 val_bpb:1.89541234
"""


def test_design_card_reads_a_programs_figures_from_its_console():
    design_card = load_bench_module("design_card")
    row = design_card.parse_log(DESIGN_CARD_LOG, design_card.Row(name="baseline"))
    assert (row.steps, row.ms_step, row.prequant_bpb) == (120, 240.0, 1.85)
    assert (row.roundtrip_bpb, row.eval_s, row.artifact_bytes, row.peak_mib) == (1.89541234, 12.345, 8123456, 10302)
    assert "baseline" in design_card.table([row]) and "1.8954" in design_card.table([row])


def test_design_card_keeps_every_programs_row_when_one_fails(tmp_path, tiny_dataset):
    """A program that refuses its settings (ttt with a chunk shorter than a sequence) gets a failed row; the baseline
    before it and an ad-hoc plugin list after it (window,leaky_relu2) keep their figures, and the JSON holds all
    three."""
    env = [f"{k}={v}" for k, v in {**TINY_RUN_ENV, "TTT_CHUNK_TOKENS": "16"}.items()]
    args = ["--data", str(tiny_dataset.data_path), "--tokenizer", str(tiny_dataset.tokenizer_path), "--vocab",
            str(tiny_dataset.vocab_size), "--steps", "2", "--programs", "baseline ttt window,leaky_relu2+MLP_MULT=3", "--seq-lens", "",
            "--work", str(tmp_path / "work"), "--json", str(tmp_path / "dc.json"), "--timeout", "300"]
    for item in env:
        args += ["--env", item]
    proc = subprocess.run([sys.executable, str(BENCH / "design_card.py"), *args], capture_output=True, text=True,
                          timeout=900, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "dc.json").read_text())
    rows = {r["name"]: r for r in doc["programs"]}
    assert rows["baseline"]["status"] == "ok" and rows["baseline"]["roundtrip_bpb"] > 0
    assert rows["baseline"]["steps"] == 2 and rows["baseline"]["ms_step"] > 0
    timed = (tmp_path / "work" / "baseline" / "console_timed.txt").read_text()  # bench/program_console.py's
    assert timed.count("\n") == (tmp_path / "work" / "baseline" / "console.txt").read_text().count("\n") > 0
    assert all(re.match(r" *\d+\.\ds \| ", line) for line in timed.splitlines())
    assert rows["ttt"]["status"] == "failed (exit 2)" and rows["ttt"]["roundtrip_bpb"] is None
    wide = rows["window,leaky_relu2+MLP_MULT=3"]
    assert wide["status"] == "ok" and wide["roundtrip_bpb"] > 0 and wide["plugins"] == ["window", "leaky_relu2"]
    assert "failed (exit" in proc.stdout


def test_design_card_program_specs_and_a_capped_runs_last_evaluation():
    """A --programs entry is a known program or a plugin list with +NAME=VALUE settings for it alone; under a
    wall-clock cap the final evaluation is printed at the step training stopped, and that is the row's figure."""
    design_card = load_bench_module("design_card")
    known = {"int6", "zstd", "window"}
    assert design_card.program_spec("int6,zstd+NUM_LAYERS=12+MLP_MULT=3", known) == (
        ("int6", "zstd"), {"NUM_LAYERS": "12", "MLP_MULT": "3"})
    assert design_card.program_spec("baseline+MLP_MULT=3", known) == ((), {"MLP_MULT": "3"})
    assert design_card.program_spec("ttt_lora", known) == (("ttt",), {"TTT_MODE": "lora"})
    assert design_card.program_spec("int6+layers=3", known) is None  # settings are upper-case NAME=VALUE
    assert design_card.program_spec("int6,nope", known) is None
    capped = DESIGN_CARD_LOG.replace("step:120/120 val_loss:3.1234", "step:37/20000 val_loss:3.1234")
    row = design_card.parse_log(capped, design_card.Row(name="capped"))
    assert (row.steps, row.prequant_bpb, row.ms_step) == (37, 1.85, 240.0)


def test_largest_fit_prices_shapes_by_the_best_schemes_bytes_per_parameter(tmp_path, capsys):
    """bench/largest_fit.py: the best scheme is the smallest among those within --quality of the best roundtrip
    (not the smallest overall, which costs score); the parameter formula matches the built models; the chosen
    shape's estimate fits the budget less the margin and the next-larger MLP at that depth does not; the program
    spec carries the scheme, fit_budget and the shape. A missing file is one line and exit 2."""
    fit = load_bench_module("largest_fit")
    schemes = {
        "int8_zlib": {"plugins": [], "env": {}, "artifact_bytes": 8_400_000, "code_bytes": 40_000,
                      "roundtrip_val_bpb": 1.516},
        "int5_tiny": {"plugins": ["int5", "zstd"], "env": {}, "artifact_bytes": 4_000_000, "code_bytes": 45_000,
                      "roundtrip_val_bpb": 1.560},
        "gptq_int6_zstd": {"plugins": ["int6", "gptq", "zstd"], "env": {}, "artifact_bytes": 6_150_000,
                           "code_bytes": 52_000, "roundtrip_val_bpb": 1.517},
        "broken": {"plugins": ["x"], "env": {}, "error": "exited 1"},
    }
    assert fit.best_scheme(schemes, 0.003)[0] == "gptq_int6_zstd"
    assert fit.best_scheme(schemes, 0.1)[0] == "int5_tiny"
    result = fit.choose({"schemes": schemes}, 0.003, 0.03, 1024)
    count = fit.parameter_counter(1024)
    assert result["baseline_params"] == sum(fit.model_parameters(9, 2, 1024).values())
    chosen = result["chosen"]
    assert chosen["estimate_bytes"] <= 16_000_000 * 0.97
    wider = 52_000 + 1024 + result["bytes_per_param"] * count(chosen["NUM_LAYERS"], chosen["MLP_MULT"] + 1)
    assert chosen["MLP_MULT"] == max(fit.MLP_MULTS) or wider > 16_000_000 * 0.97
    assert result["program"] == (f"int6,gptq,zstd,fit_budget+NUM_LAYERS={chosen['NUM_LAYERS']}"
                                 f"+MLP_MULT={chosen['MLP_MULT']}")
    assert fit.main([str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'none.json'}: expected the JSON written by "
                                               "bench/artifact_schemes.py --json")


def test_design_card_rejects_an_unknown_program_in_one_line(tmp_path, capsys):
    design_card = load_bench_module("design_card")
    assert design_card.main(["--data", "d", "--tokenizer", "t", "--vocab", "1", "--programs", "baseline nope"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --programs nope: expected names among baseline, window")
