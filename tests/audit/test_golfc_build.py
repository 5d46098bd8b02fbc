"""A golfc-built submission (the real builder's wrapper) with three clean logs audits as PASS."""

from __future__ import annotations

import json
from pathlib import Path

import golfc.build as build
from golfc.audit.folder import audit_folder

ARTIFACT = 15_800_000
SCORES = {1337: (2.0700, 1.2240), 42: (2.0712, 1.2247), 7: (2.0690, 1.2235)}


def write_log(folder: Path, seed: int, code_bytes: int) -> None:
    loss, bpb = SCORES[seed]
    lines = [
        "val_loader:shards pattern=./data/fineweb_val_*.bin tokens:63779840",
        f"seed:{seed}",
        "step:13780/20000 val_loss:2.0600 val_bpb:1.2172 train_time:599990ms step_avg:43.54ms",
        "stopping_early: wallclock_cap train_time:599990ms step:13780/20000",
        f"Code size: {code_bytes} bytes",
        f"Serialized model int8+zlib: {ARTIFACT} bytes (payload:1 raw_torch:1 payload_ratio:3.91x)",
        f"Total submission size int8+zlib: {ARTIFACT + code_bytes} bytes",
        f"final_int8_zlib_roundtrip val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:1401ms",
        f"final_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}",
    ]
    (folder / f"train_seed{seed}.log").write_text("\n".join(lines) + "\n")


def test_golfc_built_submission_passes(tmp_path: Path) -> None:
    build.build_submission(plugins=(), overrides={}, out_dir=tmp_path)
    shipped = (tmp_path / "train_gpt.py").stat().st_size
    for seed in SCORES:
        write_log(tmp_path, seed, shipped)
    mean = sum(bpb for _, bpb in SCORES.values()) / 3
    (tmp_path / "submission.json").write_text(
        json.dumps(
            {
                "val_bpb": round(mean, 8),
                "bytes_total": ARTIFACT + shipped,
                "bytes_code": shipped,
                "seed_results": {str(s): {"val_bpb": bpb, "val_loss": loss} for s, (loss, bpb) in SCORES.items()},
            }
        )
    )
    audit = audit_folder(tmp_path)
    assert audit.verdict == "PASS", [f"{f.rule} {f.severity.name} {f.message}" for f in audit.findings]
    assert audit.exit_code == 0
    assert audit.script is not None and audit.script.is_wrapped
    assert audit.script.unwrapped_bytes > 2 * audit.script.shipped_bytes
    sections = [u.label for u in audit.script.units if u.is_leaf]
    assert "train_gpt.py[core/train]" in sections and "train_gpt.py[wiring]" in sections
    assert audit.total_bytes_max == ARTIFACT + shipped
