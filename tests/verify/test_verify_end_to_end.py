"""``golfc verify`` of a real golfc build on the tiny CPU config, end to end: torchrun with gloo, the ledgers, the
recomputed BPB denominator, val-independence, the probes (golfc/verify/causality.py, replaced here by a recording
stand-in: its own tests are its helper's), the report; then ``golfc pr`` and ``golfc audit`` of the record."""

from __future__ import annotations

import json
import sys
import types

import pytest

from golfc.audit.folder import audit_folder
from golfc.build import build_submission
from golfc.verify.command import VerifyOptions, verify_submission
from golfc.verify.findings import CheckResult
from golfc.verify.pr import write_record
from golfc.verify.runs import Limits

pytestmark = pytest.mark.slow


def test_verify_a_golfc_build_then_write_and_audit_its_record(tmp_path, small_data, monkeypatch):
    calls = []

    def run_checks(program, checks, *, workdir, env, artifact=None, tolerance=0.0, nproc=1):
        calls.append({"program": program, "checks": list(checks), "workdir": workdir, "artifact": artifact,
                      "tolerance": tolerance, "nproc": nproc, "device": env.get("DEVICE")})
        return [CheckResult(name, "C1", "PASS", f"stand-in probe {name}") for name in checks]

    probes = types.ModuleType("golfc.verify.causality")
    probes.CHECKS = ("causality", "normalization", "target", "batch", "documents")
    probes.run_checks = run_checks
    monkeypatch.setitem(sys.modules, "golfc.verify.causality", probes)

    build = build_submission((), {}, tmp_path / "build")
    options = VerifyOptions(folder=build.out_dir.resolve(), seeds=[1337, 42], tiny=True, nproc=2,  # gloo
                            env={**small_data, "ITERATIONS": "3"}, checks=["causality", "batch", "val_independence"],
                            limits=Limits(), progress=False)
    report, interrupted = verify_submission(options)
    assert not interrupted
    checks = {(c["name"], c["details"].get("seed")): (c["rule"], c["verdict"]) for c in report["checks"]}
    for seed in (1337, 42):
        for name, rule in (("run", "INPUT"), ("train_clock", "L20"), ("eval_clock", "L20"), ("size", "L22"),
                           ("data_access", "L9"), ("bpb_denominator", "L17"), ("score_ledger", "L2")):
            assert checks[(name, seed)] == (rule, "PASS"), (name, seed, report["checks"])
    assert checks[("val_independence", None)] == ("L3", "PASS")
    assert checks[("causality", None)] == checks[("batch", None)] == ("C1", "PASS")
    assert checks[("seeds", None)] == ("L23", "WARN")  # two seeds
    (call,) = calls
    assert call["checks"] == ["causality", "batch"] and call["device"] == "cpu" and call["nproc"] == 2
    assert call["artifact"] == options.out / "seed_1337" / "final_model.int8.ptz"
    assert call["program"] == options.program and call["workdir"] == options.out / "probes"
    own = report["own_seconds"]  # verify's overhead outside the seed runs, timed and written down
    assert set(own) == {"probes", "val_independence", "together"} and own["val_independence"] > 0
    assert own["probes"] >= 0 and own["together"] < own["probes"] + own["val_independence"] + 1.0  # side by side
    assert "Verify's own work outside the seed runs: probes" in (options.out / "report.md").read_text()

    seed = report["seeds"][0]
    assert seed["status"] == "ok" and seed["steps"] == 3 and seed["val_tokens"] == 2048
    assert [p["name"] for p in seed["phases"]] == ["setup", "compile_warmup", "training", "serialization",
                                                   "final_int8_zlib_roundtrip"]
    assert {rank for row in seed["data_access"] for rank in row["ranks"]} == {"0", "1"}  # both ranks hooked
    assert seed["last_train_read_s"] is not None and seed["last_train_read_s"] <= seed["phases"][2]["end_s"]
    assert seed["total_bytes"] == seed["code_bytes"] + seed["artifact_bytes"]
    assert seed["code_bytes"] == (build.out_dir / "train_gpt.py").stat().st_size
    assert len(seed["curves"]["train"]) == 3 and seed["curves"]["val"]
    assert report["statistics"]["n"] == 2
    on_disk = json.loads((options.out / "report.json").read_text())
    assert [c["name"] for c in on_disk["checks"]] == [c["name"] for c in report["checks"]]
    assert (options.out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Checks" in (options.out / "report.md").read_text()

    record = write_record(options.folder, tmp_path / "record", name="Tiny baseline", author="Golfer",
                          github_id="golfer", blurb=None, date="2026-12-07")
    assert sorted(p.name for p in record.iterdir()) == ["README.md", "loss_curves.png", "submission.json",
                                                        "train_gpt.py", "train_seed1337.log", "train_seed42.log"]
    submission = json.loads((record / "submission.json").read_text())
    assert submission["seeds"] == [1337, 42] and submission["track"] == "10min_16mb"
    assert submission["seed_results"]["42"]["val_bpb"] == report["seeds"][1]["val_bpb"]
    assert submission["compliance"]["artifact_under_16mb"] and submission["compliance"]["train_under_600s"]
    assert submission["bytes_code"] == seed["code_bytes"]
    readme = (record / "README.md").read_text()
    assert "| 1337 |" in readme and "## Compliance (golfc verify)" in readme and "The reference baseline" in readme
    audit = audit_folder(record)
    assert audit.verdict != "FAIL", [f for f in audit.findings if f.severity.name == "FAIL"]
    assert {r.seed for r in audit.primary} == {1337, 42}
