"""The data-access ledger: the audit hook of golfc/verify/hook/sitecustomize.py sees every way a program opens a
data file, and the phases it happened in become findings with their rule ids."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golfc.verify.ledger import access_findings, kind_of, ledger_env, read_ledger, summarize_access
from golfc.verify.phases import PhaseTracker

READS = {
    "open": "open(P, 'rb').read(4)",
    "os_open": "os.close(os.open(P, os.O_RDONLY))",
    "fromfile": "np.fromfile(P, dtype='<u2', count=4)",
    "fromfile_offset": "np.fromfile(P, dtype='<u2', count=2, offset=4)",
    "memmap": "np.memmap(P, dtype='<u2', mode='r')[:4].sum()",
    "pathlib": "Path(P).read_bytes()",
    "np_load": "np.load(N)",
}


def _run_hooked(code: str, ledger: Path, watch: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **ledger_env(ledger, [watch], os.environ.get("PYTHONPATH"))}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_hook_sees_open_os_open_fromfile_memmap_and_np_load(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.arange(64, dtype="<u2").tofile(data / "shard.bin")
    np.save(data / "table.npy", np.arange(3))
    (tmp_path / "elsewhere.bin").write_bytes(b"x" * 8)
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    lines = [f"import os; import numpy as np; from pathlib import Path; P = {str(data / 'shard.bin')!r}; "
             f"N = {str(data / 'table.npy')!r}"]
    for name, read in READS.items():
        lines += [f"print('mark', {name!r}, __import__('time').time(), flush=True)", read]
    lines.append(f"open({str(tmp_path / 'elsewhere.bin')!r}, 'rb').read()")  # not under a watched folder
    result = _run_hooked("\n".join(lines), ledger, data)
    assert result.returncode == 0, result.stderr
    marks = [line.split() for line in result.stdout.splitlines() if line.startswith("mark")]
    events = read_ledger(ledger, 0.0)
    assert all(e.path.startswith(str(data)) for e in events)  # the file outside DATA_PATH is not in the ledger
    bounds = [float(t) for _, _, t in marks] + [time.time() + 1]
    for (_, name, _), start, end in zip(marks, bounds, bounds[1:]):
        seen = [e for e in events if start <= e.t < end]
        assert seen, f"{name}: no open event seen"
        assert seen[0].path.endswith("table.npy" if name == "np_load" else "shard.bin")


def test_torchrun_ranks_and_shadowed_sitecustomize_still_load(tmp_path):
    """Our sitecustomize runs another sitecustomize it shadows (a virtualenv's, say), and records the rank."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import builtins\nbuiltins.OTHER_SITE = True\n")
    data = tmp_path / "fineweb_val_000000.bin"  # a shard name is data wherever it lies
    data.write_bytes(b"\0" * 16)
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    env = {**os.environ, **ledger_env(ledger, [], str(other)), "RANK": "3"}
    code = f"import builtins; open({str(data)!r}, 'rb').close(); print(getattr(builtins, 'OTHER_SITE', False))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr
    (event,) = read_ledger(ledger, 0.0)
    assert event.rank == "3" and event.path == str(data)


def _tracker() -> PhaseTracker:
    tracker = PhaseTracker()
    for t, line in [(1.0, "seed:1"), (2.0, "warmup_step:1/1"), (3.0, "step:1/2 train_loss:5.0 train_time:10ms"),
                    (4.0, "step:2/2 val_loss:4.0 val_bpb:2.0 train_time:20ms"),
                    (5.0, "Serialized model int8+zlib: 10 bytes"), (6.0, "Total submission size int8+zlib: 20 bytes"),
                    (8.0, "final_int8_zlib_roundtrip val_loss:4.1 val_bpb:2.1 eval_time:1900ms")]:
        tracker.feed(t, line)
    return tracker


def _rows(events: list[tuple[float, str]]):
    from golfc.verify.ledger import Access

    return summarize_access([Access(t, 1, "0", path, "r") for t, path in events], _tracker(), "/d")


def test_reads_become_findings_by_phase():
    train, val = "/d/fineweb_train_000000.bin", "/d/fineweb_val_000000.bin"
    clean = _rows([(0.5, val), (1.5, train), (3.5, train)])
    assert [r["phase"] for r in clean] == ["setup", "setup", "training"]
    (result,) = access_findings(1, clean, hooked=True)
    assert result.verdict == "PASS" and "val@setup" in result.evidence

    leaky = _rows([(0.5, val), (3.5, val), (5.5, train), (7.0, train)])
    found = {(c.rule, c.verdict, c.details["phase"]) for c in access_findings(1, leaky, hooked=True)}
    assert found == {("L1", "WARN", "training"), ("L19", "WARN", "export"), ("L9", "FAIL", "eval")}

    (skipped,) = access_findings(1, [], hooked=False)
    assert skipped.verdict == "SKIP"


def test_kinds_by_shard_name_and_folder():
    assert kind_of("/x/fineweb_train_000001.bin", None) == "train"
    assert kind_of("/x/fineweb_val_000000.bin", None) == "val"
    assert kind_of("/t/fineweb_1024_bpe.model", None) == "tokenizer"
    assert kind_of("/d/my_val_tokens.npy", "/d") == "val"
    assert kind_of("/d/bigram_table.npy", "/d") == "data"


def test_phases_of_real_record_logs():
    """The markers of the records' own logs (tests/audit/data/records): the later ``S/N train_loss`` step lines, a
    second warmup (loop_warmup_step), GPTQ in the export, diagnostic and TTT evaluations."""
    from golfc.audit.logs import strip_source

    root = Path(__file__).resolve().parents[1] / "audit" / "data" / "records"
    expected = {
        "2026-03-17_NaiveBaseline/train.log": ["final_int8_zlib_roundtrip"],
        "2026-04-29_SmearGateBOSFix_3Seed_1.06141/train_seed42_rerun_gptq8s.log": [
            "diagnostic_pre-quantization", "diagnostic_quantized", "quantized_ttt_phased"],
    }
    for name, evals in expected.items():
        lines = (root / name).read_text(errors="replace").splitlines()
        tracker = PhaseTracker()
        for index in strip_source(lines)[0]:
            tracker.feed(float(index), lines[index])
        phases = tracker.phases(float(len(lines)))
        assert [p.name for p in phases] == ["setup", "compile_warmup", "training", "serialization", *evals], name
        assert tracker.train_curve and tracker.val_curve and tracker.iterations == 20000
        training = phases[2]
        assert lines[int(training.end_s)].startswith(("stopping_early", "step:20000/20000", "step:")), name
    last = tracker.evals[-1]
    assert last.logged_s == pytest.approx(525.512)  # eval_time:525512ms of the phased TTT
    warmup_end = next(i for i, line in enumerate(lines) if line.startswith("loop_warmup_step: 20/20"))
    assert training.start_s == warmup_end  # the second warmup belongs to the compile warmup
