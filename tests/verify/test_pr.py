"""``golfc pr``: the record folder from a verify report, without running anything (the end-to-end test runs
verify first and audits the result)."""

from __future__ import annotations

import json

import pytest

from golfc.errors import GolfcError
from golfc.verify.pr import slug, write_record

LOG = "seed:{seed}\nstep:3/3 val_loss:4.7000 val_bpb:2.8000 train_time:300ms step_avg:100.00ms\n" \
      "Serialized model int8+zlib: 1000 bytes\nfinal_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n"


def _verified(tmp_path, plugins=("sliding_window",), status=("ok", "ok", "killed")):
    folder = tmp_path / "build"
    (folder / "verify").mkdir(parents=True)
    (folder / "train_gpt.py").write_text("print('x')\n")
    (folder / "golfc.lock").write_text(json.dumps({"plugins": list(plugins), "overrides": {"EVAL_STRIDE": "64"},
                                                   "golfc_version": "0.1.0"}))
    seeds = []
    for seed, state in zip((1, 2, 3), status):
        log = folder / "verify" / f"seed_{seed}" / "console.txt"
        log.parent.mkdir()
        bpb = 1.1 + seed / 1000
        log.write_text(LOG.format(seed=seed, loss=bpb * 1.7, bpb=bpb))
        seeds.append({"seed": seed, "status": state, "val_bpb": bpb if state == "ok" else None,
                      "val_loss": bpb * 1.7 if state == "ok" else None, "log": f"verify/seed_{seed}/console.txt",
                      "artifact_bytes": 1000, "total_bytes": 1011, "train_time_s": 0.3, "eval_time_s": 0.05,
                      "steps": 3})
    report = {"seeds": seeds, "program": {"bytes": 11}, "hardware": "CPU", "verdict": "WARN",
              "network": {"isolated": True, "how": "unshare -rn"}, "config": {"nproc": 1, "env": {"X": "1"}},
              "statistics": {"n": 2, "mean_bpb": 1.1015},
              "checks": [{"name": "size", "rule": "L22", "verdict": "PASS", "evidence": "seed 1: fits", "details": {}},
                         {"name": "train_clock", "rule": "L20", "verdict": "PASS", "evidence": "ok", "details": {}},
                         {"name": "eval_clock", "rule": "L20", "verdict": "PASS", "evidence": "ok", "details": {}}]}
    (folder / "verify" / "report.json").write_text(json.dumps(report))
    return folder


def test_record_folder_from_a_report_with_plugin_recipes(tmp_path):
    folder = _verified(tmp_path)
    record = write_record(folder, tmp_path / "rec", name="Sliding | window", author="A", github_id="a",
                          blurb=None, date="2026-12-07")
    assert sorted(p.name for p in record.iterdir()) == ["README.md", "submission.json", "train_gpt.py",
                                                        "train_seed1.log", "train_seed2.log"]  # the killed seed: out
    document = json.loads((record / "submission.json").read_text())
    assert document["seeds"] == [1, 2] and document["val_bpb"] == pytest.approx(1.1015)
    assert document["compliance"]["three_seeds"] is False and document["compliance"]["artifact_under_16mb"]
    assert document["technique_summary"] == "golfc build: sliding_window"
    readme = (record / "README.md").read_text()
    assert "`golfc build --plugins sliding_window --set EVAL_STRIDE=64`" in readme
    assert "### sliding_window — sliding-window evaluation" in readme and "Evidence:" in readme
    assert "SEED=1 X=1 torchrun --standalone --nproc_per_node=1 train_gpt.py" in readme


def test_bad_input(tmp_path):
    folder = _verified(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(GolfcError, match="not empty"):
        write_record(folder, tmp_path / "full", name="n", author="a", github_id="g", blurb=None, date=None)
    (folder / "verify" / "report.json").unlink()
    with pytest.raises(GolfcError, match="run `golfc verify"):
        write_record(folder, tmp_path / "r", name="n", author="a", github_id="g", blurb=None, date=None)
    nothing = _verified(tmp_path / "n", status=("failed", "killed", "interrupted"))
    with pytest.raises(GolfcError, match="no seed finished"):
        write_record(nothing, tmp_path / "r2", name="n", author="a", github_id="g", blurb=None, date=None)
    assert slug("SP8192 + 3-Layer Recurrence!") == "SP8192_3_Layer_Recurrence"
