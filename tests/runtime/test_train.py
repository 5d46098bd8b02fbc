"""core/train: main() on CPU with a tiny config: log lines, artifact, wall-clock stop, warmup reset."""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
from pathlib import Path

import pytest

from golfc.build import build_submission

pytestmark = pytest.mark.slow  # each test runs main() of the emitted program

NUM = r"\d+\.\d{4}"
BASELINE_LINES = [  # the log lines other tools parse (shared/spec/baseline.md), in order
    r"model_params:\d+",
    r"world_size:1 grad_accum_steps:8",
    rf"step:1/3 train_loss:{NUM} train_time:\d+ms step_avg:\d+\.\d\dms",
    rf"step:3/3 val_loss:{NUM} val_bpb:{NUM} train_time:\d+ms step_avg:\d+\.\d\dms",
    r"Serialized model: (?P<raw>\d+) bytes",
    r"Code size: (?P<code>\d+) bytes",
    r"Total submission size: (?P<raw_total>\d+) bytes",
    r"Serialized model int8\+zlib: (?P<art>\d+) bytes \(payload:\d+ raw_torch:\d+ payload_ratio:\d+\.\d\dx\)",
    r"Total submission size int8\+zlib: (?P<total>\d+) bytes",
    rf"final_int8_zlib_roundtrip val_loss:{NUM} val_bpb:{NUM} eval_time:\d+ms",
    r"final_int8_zlib_roundtrip_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}",
]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    """The readable default program (runs as it is)."""
    return build_submission(out_dir=tmp_path_factory.mktemp("build")).out_dir / "train_gpt.src.py"


def run_main(script, workdir, tiny_overrides, tiny_dataset, **env) -> list[str]:
    """Run main() of ``script`` in this process, in ``workdir`` (created), with the tiny settings and ``env``;
    returns the lines it printed."""
    settings = {
        **tiny_overrides,
        "DATA_PATH": str(tiny_dataset.data_path),
        "TOKENIZER_PATH": str(tiny_dataset.tokenizer_path),
        "ITERATIONS": "3",
        "WARMUP_STEPS": "0",
        "VAL_LOSS_EVERY": "0",
        "RUN_ID": "test",
        **env,
    }
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            patch.setenv(key, value)
        workdir.mkdir()
        patch.chdir(workdir)
        with contextlib.redirect_stdout(printed):
            runpy.run_path(str(script), run_name="__main__")
    return printed.getvalue().splitlines()


ITERATION_SCHEDULE = {"MAX_WALLCLOCK_SECONDS": "0", "WARMDOWN_ITERS": "2"}  # no clock in the math


@pytest.fixture(scope="module")
def plain_run(script, tmp_path_factory, tiny_overrides, tiny_dataset) -> tuple[list[str], Path]:
    """One 3-step run without warmup on an iteration schedule: its printed lines and its folder. Shared by the
    log-line test and the warmup test (which compares a warmed run with it), so it runs once."""
    workdir = tmp_path_factory.mktemp("plain") / "run"
    return run_main(script, workdir, tiny_overrides, tiny_dataset, **ITERATION_SCHEDULE), workdir


def test_main_writes_the_baseline_log_lines_and_artifacts(script, plain_run):
    lines, workdir = plain_run
    found, i = {}, 0
    for pattern in BASELINE_LINES:
        while i < len(lines) and not re.fullmatch(pattern, lines[i]):
            i += 1
        assert i < len(lines), f"no line matching {pattern!r} (in order) in:\n" + "\n".join(lines)
        found.update(re.fullmatch(pattern, lines[i]).groupdict())
    sizes = {k: int(v) for k, v in found.items()}
    assert sizes["code"] == os.path.getsize(script)
    raw, art = (workdir / "final_model.pt").stat().st_size, (workdir / "final_model.int8.ptz").stat().st_size
    assert sizes["raw"] == raw and sizes["raw_total"] == sizes["raw"] + sizes["code"]
    assert sizes["art"] == art and sizes["total"] == sizes["art"] + sizes["code"]
    log = (workdir / "logs" / "test.txt").read_text(encoding="utf-8")
    assert log.startswith(script.read_text(encoding="utf-8"))
    assert "Running PyTorch" in log and log.rstrip().endswith(lines[-1])


def test_wallclock_cap_stops_after_the_step_that_passes_it(script, tmp_path, tiny_overrides, tiny_dataset):
    lines = run_main(
        script, tmp_path / "run", tiny_overrides, tiny_dataset, MAX_WALLCLOCK_SECONDS="0.000001", ITERATIONS="50"
    )
    stop = [line for line in lines if line.startswith("stopping_early")]
    assert len(stop) == 1 and re.fullmatch(r"stopping_early: wallclock_cap train_time:\d+ms step:1/50", stop[0])
    assert any(re.fullmatch(rf"step:1/50 val_loss:{NUM} val_bpb:{NUM} .*", line) for line in lines)


def test_compile_warmup_leaves_no_trace(script, plain_run, tmp_path, tiny_overrides, tiny_dataset):
    """Warmup steps, then reset of weights, optimizer state and loader: the run equals one without warmup."""

    def scores(lines):
        return [re.sub(r" train_time:.*| eval_time:.*", "", line) for line in lines if "loss:" in line]

    plain, _ = plain_run
    warmed = run_main(script, tmp_path / "b", tiny_overrides, tiny_dataset, WARMUP_STEPS="2", **ITERATION_SCHEDULE)
    assert any(line == "warmup_step:2/2" for line in warmed)
    assert len(scores(plain)) == 6 and scores(warmed) == scores(plain)
