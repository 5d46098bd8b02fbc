"""core/prelude: the environment check that the hparams section runs before class Hyperparameters."""

from __future__ import annotations

import pytest

from golfc.testing import load_program


def test_good_numbers_pass_and_a_malformed_one_exits_2_in_one_line(program, monkeypatch, capsys):
    check = program["check_environment"]
    monkeypatch.setenv("SEED", "42")
    monkeypatch.setenv("MATRIX_LR", "4e-2")
    monkeypatch.setenv("TIE_EMBEDDINGS", "0")
    check(ints=("SEED",), floats=("MATRIX_LR",), flags=("TIE_EMBEDDINGS",))  # no exit
    for name, text, kind, expected in [
        ("SEED", "12.5", "ints", "expected an integer"),
        ("MATRIX_LR", "fast", "floats", "expected a number"),
        ("TIE_EMBEDDINGS", "yes", "flags", "expected an integer (0 or 1)"),
    ]:
        monkeypatch.setenv(name, text)
        with pytest.raises(SystemExit) as excinfo:
            check(**{kind: (name,)})
        assert excinfo.value.code == 2
        assert capsys.readouterr().err == f"error: {name}={text!r}: {expected}\n"
        monkeypatch.delenv(name)


def test_the_program_checks_every_numeric_hyperparameter_before_reading_it(monkeypatch, capsys):
    monkeypatch.setenv("MUON_BACKEND_STEPS", "five")  # a plugin's knob, not only core's
    with pytest.raises(SystemExit) as excinfo:
        load_program()
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == "error: MUON_BACKEND_STEPS='five': expected an integer\n"


def test_a_value_outside_a_knobs_choices_exits_2_before_the_run(program, monkeypatch, capsys):
    check = program["check_environment"]
    choices = {"SDPA_BACKEND": ("auto", "cudnn", "flash")}
    monkeypatch.setenv("SDPA_BACKEND", "flash")
    check(choices=choices)  # no exit
    monkeypatch.setenv("SDPA_BACKEND", "flsh")
    with pytest.raises(SystemExit) as excinfo:
        check(choices=choices)
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == "error: SDPA_BACKEND='flsh': expected one of auto, cudnn, flash\n"
    with pytest.raises(SystemExit):
        load_program()  # the emitted hparams section passes the declared choices
    assert "SDPA_BACKEND='flsh'" in capsys.readouterr().err


def test_a_device_the_machine_lacks_is_one_line_not_a_cuda_traceback(program, monkeypatch):
    """DEVICE=cuda without CUDA (or more local ranks than GPUs) is refused by name before any CUDA call."""
    h = type("H", (), {"device": "cuda"})()
    monkeypatch.setattr(program["torch"].cuda, "is_available", lambda: False)
    with pytest.raises(program["RunInputError"], match=r"^DEVICE=cuda: LOCAL_RANK=0 needs GPU 0, but 0 CUDA device"):
        program["pick_device"](h, 0)
    monkeypatch.setattr(program["torch"].cuda, "is_available", lambda: True)
    monkeypatch.setattr(program["torch"].cuda, "device_count", lambda: 2)
    h.device = "auto"
    with pytest.raises(program["RunInputError"], match=r"^DEVICE=auto: LOCAL_RANK=3 needs GPU 3, but 2 CUDA device"):
        program["pick_device"](h, 3)
    h.device = "cpu"
    assert str(program["pick_device"](h, 3)) == "cpu"
