"""The command line as a user meets it: output, JSON, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from golfc.testing import slot_plugin

GOLFC = [sys.executable, "-m", "golfc.cli"]


def golfc(*args: str, cwd: Path | None = None, timeout: int = 300, columns: int = 250) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}  # rich tables: no wrapping in the captured output by default
    return subprocess.run([*GOLFC, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_build_writes_three_files_and_prints_the_size_table(tmp_path):
    result = golfc("build", "-o", str(tmp_path / "out"), "--set", "NUM_LAYERS=11")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"train_gpt.py", "train_gpt.src.py", "golfc.lock"}
    assert "<golfc:plugins/muon>" in result.stdout and "plugins/muon/runtime.py" in result.stdout  # name, origin
    wrapped = (tmp_path / "out" / "train_gpt.py").stat().st_size
    assert re.search(rf"total \(\.src\.py \| \.py\).*{wrapped:,}", result.stdout)
    assert "of 16,000,000" in result.stdout


def test_size_table_on_a_narrow_terminal_keeps_one_line_per_section(tmp_path):
    result = golfc("build", "-o", str(tmp_path / "out"), columns=80)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "<golfc:" in line]
    sections = json.loads((tmp_path / "out" / "golfc.lock").read_text())["sections"]
    assert len(rows) == len(sections) and all(re.search(r"<golfc:[\w/]+> +(│ +[\d,]+ ){3}│$", row) for row in rows), result.stdout
    assert "runtime.py" not in result.stdout  # the origin column gives way, not the names or the numbers
    assert max(len(line) for line in result.stdout.splitlines() if line[:1] in "┏┃┡│├└") <= 80


def test_unknown_plugin_is_one_line_with_suggestion_and_exit_2(tmp_path):
    result = golfc("build", "--plugins", "relu2mlp", "-o", str(tmp_path))
    assert result.returncode == 2
    assert one_error_line(result) == "error: unknown plugin 'relu2mlp'; did you mean relu2_mlp?"


def test_malformed_set_is_one_line(tmp_path):
    result = golfc("build", "--set", "NUM_LAYERS", "-o", str(tmp_path))
    assert result.returncode == 2
    assert one_error_line(result) == "error: --set 'NUM_LAYERS': expected NAME=VALUE"


def test_conflicting_plugins_are_one_line(tmp_path):
    plugins = tmp_path / "p"
    plugins.mkdir()
    for name in ("mlp_a", "mlp_b"):
        (plugins / f"{name}.py").write_text(slot_plugin("golfc_mlp", f"{name}_runtime", "M"))
        (plugins / f"{name}_runtime.py").write_text("class M:\n    pass\n")
    result = golfc("build", "--plugins", "mlp_a,mlp_b", "--plugins-dir", str(plugins), "-o", str(tmp_path / "o"))
    assert result.returncode == 2
    assert one_error_line(result) == "error: plugins mlp_a and mlp_b both fill slot 'mlp', which takes exactly one"


def test_plugins_json_describes_every_builtin():
    result = golfc("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"muon", "relu2_mlp", "int8_quant", "zlib_compress", "plain_eval"} <= set(rows)
    assert rows["muon"]["slots"] == ["optimizer"] and rows["muon"]["default"] is True
    assert {"name": "MATRIX_LR", "type": "float", "default": 0.04}.items() <= rows["muon"]["hparams"][0].items()
    assert all(row["summary"] for row in rows.values())


def test_size_counts_shipped_code_plus_artifact(tmp_path):
    assert golfc("build", "-o", str(tmp_path), "-q").returncode == 0
    (tmp_path / "final_model.int8.ptz").write_bytes(b"\0" * 1000)
    result = golfc("size", str(tmp_path), "--json")
    info = json.loads(result.stdout)
    code = (tmp_path / "train_gpt.py").stat().st_size
    assert result.returncode == 0
    assert (info["code_bytes"], info["model_bytes"], info["total_bytes"], info["fits"]) == (
        code,
        1000,
        code + 1000,
        True,
    )
    (tmp_path / "final_model.int8.ptz").write_bytes(b"\0" * 16_000_000)
    over = golfc("size", str(tmp_path))
    assert over.returncode == 1 and "over the limit" in over.stdout


def test_size_of_a_folder_without_script_is_one_line(tmp_path):
    result = golfc("size", str(tmp_path))
    assert result.returncode == 2
    assert (
        one_error_line(result)
        == f"error: {tmp_path / 'train_gpt.py'}: not found; expected the shipped train_gpt.py in the folder"
    )


def test_demo_runs_the_main_job_on_the_tiny_corpus(tmp_path):
    result = golfc("demo", "-o", str(tmp_path / "demo"), "--steps", "3", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "final_int8_zlib_roundtrip_exact val_loss:" in result.stdout
    assert (tmp_path / "demo" / "submission" / "logs" / "demo.txt").is_file()


def test_audit_exit_codes_pass_through_the_entry_point(tmp_path):
    """0 for PASS/WARN, 1 for FAIL, 2 for unusable input, as the shell sees them."""
    scripts = Path(__file__).parent / "audit" / "data" / "scripts"
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "train_gpt.py").write_text((scripts / "rescore_two_pass_L5.py").read_text())
    legal = tmp_path / "legal"
    legal.mkdir()
    (legal / "train_gpt.py").write_text((scripts / "sliding_window_legal.py").read_text())
    assert golfc("audit", str(leaky)).returncode == 1
    assert golfc("audit", str(legal)).returncode == 0
    assert golfc("audit", str(tmp_path / "missing")).returncode == 2


def test_usage_errors_print_click_usage_not_a_traceback():
    for args in (("size",), ("audit",), ("build", "--bogus")):
        result = golfc(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and "Error:" in result.stderr
