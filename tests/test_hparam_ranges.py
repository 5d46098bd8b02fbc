"""Hyperparameter ranges and the rules between them: refused at build (`--set`) and when the emitted run starts
(the environment), each in one line, with the same words."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from golfc.build import build_submission
from golfc.errors import HParamError
from golfc.hparams import HParams
from golfc.runtime.checks import hparam_problems, range_problem, rule_problem
from golfc.testing import load_program

GOLFC = [sys.executable, "-m", "golfc.cli"]

HEADS = "the head dimension is MODEL_DIM / NUM_HEADS"
GROUPS = "query heads share key/value heads in equal groups"
ROPE = "RoPE rotates pairs of the head dimension"
STEP = "every step is 8 micro-batches of whole sequences"
WINDOW = "one window per rank and micro-batch, on 1 to 8 GPUs"

# (NAME, bad value, the problem in words: the build says "--set " before a range problem, the run does not)
RANGE_CASES = [
    ("NUM_LAYERS", "-3", "NUM_LAYERS=-3: expected NUM_LAYERS >= 1"),
    ("NUM_HEADS", "0", "NUM_HEADS=0: expected NUM_HEADS >= 1"),
    ("TRAIN_SEQ_LEN", "0", "TRAIN_SEQ_LEN=0: expected TRAIN_SEQ_LEN >= 1"),
    ("COMPILE", "2", "COMPILE=2: expected COMPILE >= -1 and COMPILE <= 1"),
    ("LOGIT_SOFTCAP", "0", "LOGIT_SOFTCAP=0.0: expected LOGIT_SOFTCAP > 0.0"),
    ("SEED", "-1", "SEED=-1: expected SEED >= 0 and SEED <= 4294967295"),
    ("MLP_MULT", "0", "MLP_MULT=0: expected MLP_MULT >= 1"),  # a plugin's knob
    ("MUON_MOMENTUM_WARMUP_START", "1.5", "MUON_MOMENTUM_WARMUP_START=1.5: expected "
     "MUON_MOMENTUM_WARMUP_START >= 0.0 and MUON_MOMENTUM_WARMUP_START <= 1.0"),
]
RULE_CASES = [
    ({"MODEL_DIM": "500"}, f"MODEL_DIM=500, NUM_HEADS=8: expected MODEL_DIM to be a multiple of NUM_HEADS ({HEADS})"),
    ({"NUM_KV_HEADS": "3"}, f"NUM_HEADS=8, NUM_KV_HEADS=3: expected NUM_HEADS to be a multiple of NUM_KV_HEADS ({GROUPS})"),
    ({"MODEL_DIM": "40"}, f"MODEL_DIM=40, NUM_HEADS=8: expected MODEL_DIM / NUM_HEADS to be even ({ROPE})"),
    ({"TRAIN_BATCH_TOKENS": "1000"}, "TRAIN_BATCH_TOKENS=1000, TRAIN_SEQ_LEN=1024: expected TRAIN_BATCH_TOKENS to be "
     f"a multiple of 8 * TRAIN_SEQ_LEN ({STEP})"),
    ({"VAL_BATCH_SIZE": "4096"}, f"VAL_BATCH_SIZE=4096, TRAIN_SEQ_LEN=1024: expected VAL_BATCH_SIZE >= 8 * TRAIN_SEQ_LEN ({WINDOW})"),
]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_build_refuses_a_negative_layer_count_in_one_line(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([*GOLFC, "build", "--set", "NUM_LAYERS=-3", "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 2
    assert one_line(result.stderr) == "error: --set NUM_LAYERS=-3: expected NUM_LAYERS >= 1"
    assert not out.exists()


@pytest.mark.parametrize(("name", "value", "problem"), RANGE_CASES)
def test_build_refuses_a_value_out_of_its_range(tmp_path, name, value, problem):
    with pytest.raises(HParamError) as excinfo:
        build_submission(overrides={name: value}, out_dir=tmp_path / "o")
    assert str(excinfo.value) == f"--set {problem}"


@pytest.mark.parametrize(("overrides", "problem"), RULE_CASES)
def test_build_refuses_values_that_break_a_rule(tmp_path, overrides, problem):
    with pytest.raises(HParamError) as excinfo:
        build_submission(overrides=overrides, out_dir=tmp_path / "o")
    assert str(excinfo.value) == problem


def test_values_on_the_edge_of_each_rule_build(tmp_path):
    edges = {"MODEL_DIM": "48", "NUM_HEADS": "8", "NUM_KV_HEADS": "8", "TRAIN_BATCH_TOKENS": "8192",
             "TRAIN_SEQ_LEN": "1024", "VAL_BATCH_SIZE": "8192", "COMPILE": "1", "ITERATIONS": "0", "SEED": "0"}
    result = build_submission(overrides=edges, out_dir=tmp_path / "o")
    assert result.lock["hparams"]["MODEL_DIM"] == 48


@pytest.mark.parametrize(("name", "value", "problem"), RANGE_CASES[:3] + RANGE_CASES[6:7])
def test_the_run_refuses_an_environment_value_out_of_range_in_one_line(capsys, name, value, problem):
    with pytest.raises(SystemExit) as excinfo:
        load_program(env={name: value})
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == f"error: {problem}\n"


@pytest.mark.parametrize(("env", "problem"), RULE_CASES)
def test_the_run_refuses_environment_values_that_break_a_rule(capsys, env, problem):
    with pytest.raises(SystemExit) as excinfo:
        load_program(env=env)
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == f"error: {problem}\n"


def test_the_emitted_script_exits_2_with_one_line_on_a_bad_shape(tmp_path):
    build_submission(out_dir=tmp_path)
    env = {**os.environ, "DEVICE": "cpu", "NUM_LAYERS": "-3"}
    result = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert one_line(result.stderr) == "error: NUM_LAYERS=-3: expected NUM_LAYERS >= 1"
    assert result.stdout == ""  # nothing started: no log file name, no training


def test_a_default_out_of_its_own_range_is_refused_when_declared():
    hp = HParams()
    hp.current_owner = "myplugin"
    with pytest.raises(HParamError, match=r"^hyperparameter DEPTH \(plugin myplugin\): default DEPTH=0: expected "
                                          r"DEPTH >= 1$"):
        hp.int("DEPTH", 0, "blocks", ge=1)


def test_a_rule_must_name_declared_numbers():
    hp = HParams()
    hp.int("WIDTH", 64, "width")
    hp.str("MODE", "a", "mode")
    for other in ("HEADS", "MODE"):
        with pytest.raises(HParamError, match=f"rule on WIDTH and {other} .*: {other} is not a declared int or float"):
            hp.require_multiple("WIDTH", other)
    with pytest.raises(HParamError, match="factor 0, expected an integer >= 1"):
        hp.require_multiple("WIDTH", "WIDTH", factor=0)


def test_checks_name_each_problem_and_a_zero_divisor_fails_the_rule():
    assert range_problem("X", 5, ((">=", 1), ("<=", 9))) is None
    assert range_problem("X", 10, ((">=", 1), ("<=", 9))) == "X=10: expected X >= 1 and X <= 9"
    assert rule_problem(("multiple", "A", "B", 1, ""), {"A": 6, "B": 0}) == "A=6, B=0: expected A to be a multiple of B"
    assert rule_problem(("at_least", "A", "B", 2, "n"), {"A": 3, "B": 2}) == "A=3, B=2: expected A >= 2 * B (n)"
    assert rule_problem(("even_quotient", "A", "B", 1, ""), {"A": 12, "B": 3}) is None  # 4 is even
    # a rule is not checked over a value already out of range: the range problem is the one reported
    assert hparam_problems({"A": 0, "B": 4}, {"A": ((">=", 1),)}, [("multiple", "B", "A", 1, "")]) == [
        "A=0: expected A >= 1"
    ]
