"""``golfc verify`` as a user meets it: bad input is one line and exit 2; runs of a hand-written submission (the
fake of conftest.py) under torchrun: golfc's clocks and hard limit, the data-access findings, side-by-side GPU
sets, network isolation, and an interrupted verification that keeps the finished seeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from golfc.verify.runs import network_isolation

GOLFC = [sys.executable, "-m", "golfc.cli"]


def golfc(*args: str, env: dict[str, str] | None = None, timeout: int = 300, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*GOLFC, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["--seeds", "1,x"], "--seeds '1,x': expected distinct non-negative integers"),
    (["--seeds", "1,1"], "--seeds '1,1'"),
    (["--checks", "causality,flux"], "unknown check flux"),
    (["--gpus", "0,1", "--gpus", "1,2"], "the GPU sets overlap"),
    (["--gpus", "0,a"], "--gpus '0,a'"),
    (["--env", "NOEQUALS"], "--env 'NOEQUALS': expected NAME=VALUE"),
    (["--nproc", "3"], "--nproc 3: expected 1, 2, 4 or 8"),
    (["--against-values", "1.0,zero"], "--against-values '1.0,zero'"),
    (["--tolerance", "-1"], "--tolerance -1.0: expected 0"),
])
def test_bad_options_are_one_line_and_exit_2(fake_submission, args, expected):
    result = golfc("verify", str(fake_submission), *args)
    assert result.returncode == 2 and expected in one_line(result)
    assert not (fake_submission / "verify").exists()  # nothing ran


def test_a_folder_without_train_gpt_is_one_line_and_exit_2(tmp_path):
    result = golfc("verify", str(tmp_path))
    assert result.returncode == 2 and "no train_gpt.py" in one_line(result)
    result = golfc("pr", str(tmp_path), "--name", "x", "--author", "a", "--github-id", "g")
    assert result.returncode == 2 and "no train_gpt.py" in one_line(result)


def _checks(report: dict, seed: int | None = None) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["rule"], c["verdict"]) for c in report["checks"]
            if seed is None or c["details"].get("seed") == seed}


@pytest.mark.slow
def test_clocks_hard_limit_and_data_access_of_a_hand_written_submission(fake_submission, small_data):
    env = {"FAKE_MODE_1": "clean", "FAKE_MODE_2": "hang,stubborn", "FAKE_MODE_3": "train_at_eval,net,slow_clock"}
    start = time.time()
    result = golfc("verify", str(fake_submission), "--seeds", "1,2,3", "--checks", "none", "--json",
                   "--train-limit", "1", "--hard-limit", "3", "--env", f"DATA_PATH={small_data['DATA_PATH']}", env=env)
    assert result.returncode == 1, result.stderr  # a FAIL
    report = json.loads(result.stdout)
    assert report["seeds"] == json.loads((fake_submission / "verify" / "report.json").read_text())["seeds"]
    seeds = {s["seed"]: s for s in report["seeds"]}
    assert {s: seeds[s]["status"] for s in seeds} == {1: "ok", 2: "killed", 3: "ok"}
    # seed 2 never left its first training step: stopped 3 s (--hard-limit 3 x --train-limit 1 s) into training
    assert "training ran" in seeds[2]["killed_reason"] and seeds[2]["wall_s"] < 60
    assert time.time() - start < 240
    pid = int((fake_submission / "verify" / "seed_2" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the rank (in a session of its own, deaf to SIGTERM) is gone too
    assert _checks(report, 2)["run"] == ("L20", "FAIL")
    assert [p["name"] for p in seeds[2]["phases"]] == ["setup", "compile_warmup", "training"]
    one = _checks(report, 1)
    assert one["run"][1] == one["train_clock"][1] == one["eval_clock"][1] == one["size"][1] == "PASS"
    assert one["data_access"] == ("L9", "PASS")
    assert [p["name"] for p in seeds[1]["phases"]] == ["setup", "compile_warmup", "training", "serialization",
                                                       "final_int8_zlib_roundtrip"]
    assert seeds[1]["curves"]["train"] == [[1, 4.9], [2, 4.8], [3, 4.7]]
    kinds = {(r["kind"], r["phase"]) for r in seeds[1]["data_access"]}
    assert kinds == {("val", "setup"), ("train", "training")}  # np.fromfile at set-up, np.memmap per step
    assert _checks(report, 3)["data_access"] == ("L9", "FAIL")  # np.fromfile of a train shard after the export
    assert _checks(report, 3)["train_clock"] == ("L20", "FAIL")  # the log's own train_time: 700 s
    assert seeds[1]["total_bytes"] == 1001 + (fake_submission / "train_gpt.py").stat().st_size
    assert report["statistics"]["n"] == 2 and report["verdict"] == "FAIL"
    if network_isolation()[0] is not None:
        assert report["network"]["isolated"] and _checks(report)["network"] == ("NET", "PASS")
        console = (fake_submission / "verify" / "seed_3" / "console.txt").read_text()
        assert "network:unreachable" in console
    assert (fake_submission / "verify" / "loss_curves.png").stat().st_size > 1000
    assert "| 2 | killed |" in (fake_submission / "verify" / "report.md").read_text()


@pytest.mark.slow
def test_side_by_side_runs_on_disjoint_gpu_sets_with_default_relative_data_paths(fake_submission, small_data,
                                                                                  tmp_path):
    # the program's default DATA_PATH is ./data/datasets/…, relative to where golfc was started (a checkout)
    work = tmp_path / "checkout"
    (work / "data" / "datasets").mkdir(parents=True)
    (work / "data" / "datasets" / "fineweb10B_sp384").symlink_to(small_data["DATA_PATH"])
    result = golfc("verify", str(fake_submission), "--seeds", "1,2", "--gpus", "0", "--gpus", "1", "--checks",
                   "none", "--no-isolate-network", cwd=work, env={"DATA_PATH": ""})
    assert result.returncode == 0, result.stderr
    report = json.loads((fake_submission / "verify" / "report.json").read_text())
    assert [s["gpus"] for s in report["seeds"]] == [[0], [1]]
    assert [s["status"] for s in report["seeds"]] == ["ok", "ok"]
    assert {(r["kind"], r["phase"]) for r in report["seeds"][0]["data_access"]} == {("val", "setup"),
                                                                                  ("train", "training")}
    for seed, gpu in ((1, "0"), (2, "1")):
        console = (fake_submission / "verify" / f"seed_{seed}" / "console.txt").read_text()
        assert f"cuda_visible:{gpu}" in console
    assert "runs had network" in result.stdout  # --no-isolate-network: a WARN, said in the table


@pytest.mark.slow
def test_an_interrupted_verification_keeps_the_finished_seeds(fake_submission, small_data):
    env = {**os.environ, "FAKE_MODE_2": "hang", "COLUMNS": "200"}
    # golfc as a terminal starts it, SIGINT not ignored: a suite started in the background (`pytest ... &`, nohup)
    # runs with SIGINT ignored, which golfc would inherit and keep, never seeing this Ctrl-C (it waited out 180 s).
    # The stand-in restores SIGINT's default, then execs golfc in its own process (the same pid).
    restore_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                      "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", restore_sigint, *GOLFC, "verify", str(fake_submission), "--seeds",
                             "1,2", "--checks", "none", "--env", f"DATA_PATH={small_data['DATA_PATH']}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    report_path = fake_submission / "verify" / "report.json"
    pid_file = fake_submission / "verify" / "seed_2" / "pid"
    deadline = time.time() + 180
    while time.time() < deadline and not pid_file.exists():
        time.sleep(0.2)
    assert pid_file.exists(), "seed 2 never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=180)  # a loaded machine (two xdist workers and more) can be slow to stop
    assert proc.returncode == 130, stderr
    report = json.loads(report_path.read_text())
    assert report["interrupted"] and [(s["seed"], s["status"]) for s in report["seeds"]] == [(1, "ok"),
                                                                                           (2, "interrupted")]
    assert report["seeds"][0]["val_bpb"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_probe_check_names_match_the_probe_module_when_present():
    from golfc.verify.command import PROBE_CHECKS, probe_checks

    assert probe_checks() == PROBE_CHECKS  # golfc/verify/causality.py's CHECKS, once it is merged


def test_probes_that_break_or_are_missing_give_skip_lines(fake_submission, monkeypatch):
    import types

    from golfc.verify.command import VerifyOptions, run_probes

    options = VerifyOptions(folder=fake_submission, seeds=[1], checks=["causality", "documents", "val_independence"])

    def broken(*_args, **_kwargs):
        raise RuntimeError("probe run exited 1")

    module = types.ModuleType("golfc.verify.causality")
    module.CHECKS, module.run_checks = ("causality", "normalization", "target", "batch", "documents"), broken
    monkeypatch.setitem(sys.modules, "golfc.verify.causality", module)
    (result,) = run_probes(options, {}, None)
    assert result.verdict == "SKIP" and "RuntimeError: probe run exited 1" in result.evidence
    monkeypatch.setitem(sys.modules, "golfc.verify.causality", None)  # an import of it fails
    assert [(r.name, r.verdict) for r in run_probes(options, {}, None)] == [("causality", "SKIP"),
                                                                            ("documents", "SKIP")]
    assert run_probes(VerifyOptions(folder=fake_submission, seeds=[1], checks=["val_independence"]), {}, None) == []
