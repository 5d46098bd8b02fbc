"""The command line as a user meets it: output, JSON, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from golfc.testing import slot_plugin

GOLFC = [sys.executable, "-m", "golfc.cli"]


def golfc(
    *args: str, cwd: Path | None = None, timeout: int = 300, columns: int = 250, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), **(env or {})}  # rich tables: no wrapping by default
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
    assert one_error_line(result) == "error: unknown plugin 'relu2mlp'; did you mean relu2_mlp, leaky_relu2?"


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
    assert "choices" not in rows["muon"]["hparams"][0]
    assert rows["sdpa_attention"]["hparams"][0]["choices"] == ["auto", "cudnn", "flash", "efficient", "math"]
    assert rows["relu2_mlp"]["hparams"][0]["range"] == ">= 1" and rows["muon"]["hparams"][0]["range"] == ">= 0.0"
    ranges = {h["name"]: h.get("range") for h in rows["warmdown_schedule"]["hparams"]}
    assert ranges["MUON_MOMENTUM_WARMUP_START"] == ">= 0.0 and <= 1.0"
    assert rows["plain_eval"]["hparams"] == []  # its rule names core's knobs; it declares none of its own
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


@pytest.mark.slow  # trains and evaluates on CPU
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


# ---------------------------------------------------------------------------------------- review fixes
BAD_SIGNATURE = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_mlp(foo):
    return Impl(module="gelu_runtime", symbols="MLP")
"""
TYPO_HOOK = "from golfc import hookimpl\n\n@hookimpl\ndef golfc_mlpp():\n    return None\n"


def test_out_paths_that_cannot_be_folders_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("keep me\n")
    proc_writable = os.access("/proc", os.W_OK | os.X_OK)  # root may write into /proc, where mkdir then fails
    for out, expected in (
        ("afile", "afile is a file; expected a folder"),
        ("afile/sub", "afile is a file; expected a folder"),
        ("/proc/golfc-test/x", "cannot create the folder" if proc_writable else "cannot write into /proc"),
    ):
        result = golfc("build", "-q", "-o", out, cwd=tmp_path)
        assert result.returncode == 2, out
        line = one_error_line(result)
        assert line.startswith(f"error: --out {out}: ") and expected in line, line
    assert (tmp_path / "afile").read_text() == "keep me\n"


def test_a_failing_write_leaves_the_previous_build_as_it_was(tmp_path):
    out = tmp_path / "keep"
    assert golfc("build", "-q", "-o", str(out)).returncode == 0
    before = {name: (out / name).read_bytes() for name in ("train_gpt.py", "train_gpt.src.py")}
    (out / "golfc.lock").unlink()
    (out / "golfc.lock").mkdir()
    result = golfc("build", "-q", "--set", "NUM_LAYERS=3", "-o", str(out))
    assert result.returncode == 2
    expected = f"error: {out / 'golfc.lock'}: is a directory; expected a file there (or nothing), remove it first"
    assert one_error_line(result) == expected
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["golfc.lock", "train_gpt.py", "train_gpt.src.py"]  # no temporaries


def test_write_failure_after_the_checks_removes_temporaries_and_keeps_old_files(tmp_path, monkeypatch):
    """Files are written into a staging folder and installed only when all three are written."""
    from golfc import build as build_module
    from golfc.errors import GolfcError
    from golfc.outputs import STAGING_PREFIX

    out = tmp_path / "keep"
    build_module.build_submission((), {}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write_text = Path.write_text

    def fail_on_the_lock(self, text, *args, **kwargs):
        if self.name == "golfc.lock" and self.parent.name.startswith(STAGING_PREFIX):
            raise OSError(28, "No space left on device")
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_on_the_lock)
    try:
        build_module.build_submission((), {"NUM_LAYERS": "3"}, out)
    except GolfcError as exc:
        assert str(exc) == f"--out {out}: cannot write golfc.lock (No space left on device)"
    else:
        raise AssertionError("the build should have failed")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_rename_failing_mid_install_rolls_the_whole_build_back(tmp_path, monkeypatch):
    """The three files are installed all or nothing: when the second rename fails, the first is undone."""
    from golfc import build as build_module
    from golfc.errors import OutputError
    from golfc.outputs import STAGING_PREFIX

    out = tmp_path / "keep"
    build_module.build_submission((), {}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace = os.replace
    installed: list[str] = []

    def fail_on_the_second_install(src, dst):
        if Path(src).parent.name.startswith(STAGING_PREFIX):  # a new file taking its final name, not a backup
            installed.append(Path(dst).name)
            if len(installed) == 2:
                raise OSError(5, "Input/output error", str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_the_second_install)
    try:
        build_module.build_submission((), {"NUM_LAYERS": "3"}, out)
    except OutputError as exc:
        failed = out / installed[1]
        assert str(exc) == f"{failed}: cannot replace it (Input/output error); the previous files are unchanged"
    else:
        raise AssertionError("the build should have failed")
    assert len(installed) == 2, installed  # the first new file was in place before the second rename failed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # byte-identical, no staging folder left


def test_demo_names_its_own_out_option_when_it_is_a_file(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("keep me\n")
    result = golfc("demo", "-o", str(blocker), "--steps", "1")
    assert result.returncode == 2
    assert one_error_line(result) == f"error: --out {blocker}: {blocker} is a file; expected a folder"
    assert blocker.read_text() == "keep me\n"


def test_repeated_plugins_options_accumulate_in_order(tmp_path):
    plugins = tmp_path / "pd"
    plugins.mkdir()
    for name in ("post_a", "post_b"):
        (plugins / f"{name}.py").write_text(slot_plugin("golfc_attention_post", f"{name}_runtime", f"fn_{name}"))
        (plugins / f"{name}_runtime.py").write_text(f"def fn_{name}(y, v, layer, h):\n    return y\n")
    out = tmp_path / "mp"
    args = ("--plugins-dir", str(plugins), "--plugins", "post_b", "--plugins", "post_a,post_b", "-o", str(out))
    result = golfc("build", "-q", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "golfc.lock").read_text())["plugins"] == ["post_b", "post_a"]


def test_naming_core_or_a_default_or_a_plugin_twice_gives_the_baseline_files(tmp_path):
    assert golfc("build", "-q", "-o", str(tmp_path / "plain")).returncode == 0
    named = golfc("build", "-q", "--plugins", "muon,muon", "--plugins", "core", "-o", str(tmp_path / "named"))
    assert named.returncode == 0, named.stderr
    for name in ("train_gpt.py", "train_gpt.src.py", "golfc.lock"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "named" / name).read_bytes(), name
    assert json.loads((tmp_path / "named" / "golfc.lock").read_text())["plugins"] == []


def test_bad_hook_signature_is_one_line_in_plugins_and_in_build(tmp_path):
    plugins = tmp_path / "pd"
    plugins.mkdir()
    (plugins / "gelu.py").write_text(BAD_SIGNATURE)
    expected = (
        f"error: plugin gelu ({plugins / 'gelu.py'}): golfc_mlp takes argument 'foo', which the hook does not pass "
        "(it passes: recipe)"
    )
    listed = golfc("plugins", "--plugins-dir", str(plugins))
    assert listed.returncode == 2 and one_error_line(listed) == expected
    assert "muon" in listed.stdout and "gelu" not in listed.stdout  # the others are still listed
    built = golfc("build", "--plugins-dir", str(plugins), "--plugins", "gelu", "-o", str(tmp_path / "o"))
    assert built.returncode == 2 and one_error_line(built) == expected


def test_plugins_reports_a_typo_hook_as_build_does(tmp_path):
    plugins = tmp_path / "pd"
    plugins.mkdir()
    (plugins / "typo.py").write_text(TYPO_HOOK)
    expected = f"error: plugin typo ({plugins / 'typo.py'}): unknown hook golfc_mlpp; did you mean golfc_mlp?"
    listed = golfc("plugins", "--json", "--plugins-dir", str(plugins))
    assert listed.returncode == 2 and one_error_line(listed) == expected
    assert "typo" not in {row["name"] for row in json.loads(listed.stdout)}
    built = golfc("build", "--plugins-dir", str(plugins), "--plugins", "typo", "-o", str(tmp_path / "o"))
    assert built.returncode == 2 and one_error_line(built) == expected


def test_a_broken_entry_point_is_one_line_and_the_others_are_listed(tmp_path):
    site = tmp_path / "site"
    dist = site / "brokengolf-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokengolf\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[golfc.plugins]\nbroken_ep = no_such_module_xyz\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}
    listed = golfc("plugins", env=env)
    assert listed.returncode == 2
    line = one_error_line(listed)
    assert line.startswith("error: plugin broken_ep (entry point brokengolf) failed to import: "), line
    assert "muon" in listed.stdout
    assert golfc("build", "-q", "-o", str(tmp_path / "ok"), env=env).returncode == 0  # not needed: no effect
    needed = golfc("build", "--plugins", "broken_ep", "-o", str(tmp_path / "o"), env=env)
    assert needed.returncode == 2 and one_error_line(needed).startswith("error: plugin broken_ep (entry point")


def test_size_of_a_file_says_a_folder_was_expected(tmp_path):
    assert golfc("build", "-q", "-o", str(tmp_path)).returncode == 0
    result = golfc("size", str(tmp_path / "train_gpt.py"))
    assert result.returncode == 2
    assert one_error_line(result) == (
        f"error: {tmp_path / 'train_gpt.py'}: is a file; expected the build or run folder that holds train_gpt.py"
    )


def test_demo_checks_its_options_before_any_work(tmp_path):
    for args, expected in (
        (("--steps", "-2"), "error: --steps -2: expected at least 1 training step"),
        (("--steps", "0"), "error: --steps 0: expected at least 1 training step"),
        (("--nproc", "0"), "error: --nproc 0: expected one of 1, 2, 4, 8 (it must divide 8)"),
        (("--nproc", "3"), "error: --nproc 3: expected one of 1, 2, 4, 8 (it must divide 8)"),
        (("--plugins", "qqqzzz"), "error: unknown plugin 'qqqzzz'; `golfc plugins` lists them"),
    ):
        result = golfc("demo", "-o", str(tmp_path / "d6"), *args)
        assert result.returncode == 2 and one_error_line(result) == expected, args
        assert not (tmp_path / "d6").exists(), args  # no data built


def test_size_table_on_a_very_narrow_terminal_never_cuts_a_number(tmp_path):
    result = golfc("build", "-o", str(tmp_path / "out"), columns=60)
    assert result.returncode == 0, result.stderr
    lock = json.loads((tmp_path / "out" / "golfc.lock").read_text())
    table = result.stdout.split("code bytes")[0]
    assert "…" not in table
    for section in lock["sections"]:
        assert f"{section['bytes']:,}" in table, section["name"]
    assert f"{lock['files']['train_gpt.py']['bytes']:,}" in table
    assert max(len(line) for line in table.splitlines()) <= 60


def test_version_prints_the_package_version():
    from golfc import __version__

    result = golfc("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"golfc {__version__}"


def test_help_shows_no_type_placeholder_after_a_flag():
    helps = {command: golfc(*command, "--help", columns=120) for command in ((), ("build",), ("audit",))}
    for command, result in helps.items():
        assert result.returncode == 0, result.stderr
        assert "<bool>" not in result.stdout, command
        assert "--help" in result.stdout
    assert "--version" in helps[()].stdout and "--minify" in helps[("build",)].stdout
    assert "<path>" in helps[("build",)].stdout  # options that take a value keep their type


def test_empty_plugin_names_are_refused_not_built_as_the_baseline(tmp_path):
    for option in ("", ",", "muon,,relu2_mlp", "muon, "):
        result = golfc("build", "--plugins", option, "-o", str(tmp_path / "o"))
        assert result.returncode == 2, option
        assert one_error_line(result) == (
            f"error: --plugins {option!r}: empty plugin name; expected comma-separated plugin names"
        )
        assert not (tmp_path / "o").exists()


def test_plugins_table_cuts_no_name_at_80_columns():
    rows = json.loads(golfc("plugins", "--json").stdout)
    result = golfc("plugins", columns=80)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    words = set(re.findall(r"[A-Za-z0-9_]+", result.stdout))
    for row in rows:
        assert row["name"] in words
        assert set(row["slots"]) <= words
        assert {h["name"] for h in row["hparams"]} <= words
