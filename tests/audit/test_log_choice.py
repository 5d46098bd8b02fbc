"""Choosing logs: each claimed seed is scored by the log and the line that support the claim (value, then bytes),
and the other logs and score lines are shown as such."""

from __future__ import annotations

import json
from pathlib import Path

from golfc.audit.folder import audit_folder

SCRIPT = "import torch\n\ndef main():\n    pass\n"


def log_text(seed: int, scores: list[tuple[str, float]], artifact: int = 15_000_000) -> str:
    lines = [f"seed:{seed}", "step:100/100 val_loss:2.1 val_bpb:1.3 train_time:590000ms step_avg:5900.00ms",
             f"Serialized model int8+zlib: {artifact} bytes"]
    lines += [f"{label} val_loss:{2 * bpb:.8f} val_bpb:{bpb:.8f}" for label, bpb in scores]
    return "\n".join(lines) + "\n"


def folder_with(tmp_path: Path, logs: dict[str, str], submission: dict) -> Path:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "train_gpt.py").write_text(SCRIPT)
    for name, text in logs.items():
        (folder / name).write_text(text)
    (folder / "submission.json").write_text(json.dumps(submission, indent=2))
    return folder


def seeds(folder: Path) -> list[dict]:
    return audit_folder(folder).as_json()["seeds"]


def test_several_logs_of_one_seed_the_one_matching_the_claim_is_counted(tmp_path: Path) -> None:
    """As the LoRA TTT record: train_v0 … train_v3, every one seed 1337, submission.json claims train_v3's score."""
    values = {"train_v0.txt": 1.1935, "train_v1.txt": 1.1927, "train_v2.txt": 1.1921, "train_v3.txt": 1.1929}
    logs = {name: log_text(1337, [("final_ttt_lora", bpb)]) for name, bpb in values.items()}
    folder = folder_with(tmp_path, logs, {"val_bpb": 1.1929})
    rows = {row["log"]: row for row in seeds(folder)}
    assert rows["train_v3.txt"]["role"] == "claimed" and rows["train_v3.txt"]["primary"]
    assert {rows[name]["role"] for name in ("train_v0.txt", "train_v1.txt", "train_v2.txt")} == {"other"}
    assert audit_folder(folder).stats["mean_bpb"] == 1.1929


def test_the_claimed_line_is_the_score_and_a_later_ttt_line_is_shown_as_another(tmp_path: Path) -> None:
    scores = [("final_sliding_window_exact", 1.10001234), ("legal_ttt_exact", 1.09001234)]
    logs = {"train_seed42.log": log_text(42, scores), "train_seed7.log": log_text(7, scores)}
    claims = {"42": {"val_bpb": 1.10001234}, "7": {"val_bpb": 1.09001234}}
    folder = folder_with(tmp_path, logs, {"val_bpb": 1.09501234, "seed_results": claims})
    rows = {row["seed"]: row for row in seeds(folder)}
    assert (rows[42]["val_bpb"], rows[42]["score_line"], rows[42]["role"]) == (
        1.10001234, "final_sliding_window_exact", "claimed")
    assert [(s["score_line"], s["val_bpb"]) for s in rows[42]["other_scores"]] == [("legal_ttt_exact", 1.09001234)]
    assert (rows[7]["val_bpb"], rows[7]["score_line"]) == (1.09001234, "legal_ttt_exact")  # the last line, claimed
    findings = audit_folder(folder).findings
    assert not [f for f in findings if "seed_results" in f.message or "mean of the logged seeds" in f.message]


def test_bytes_break_a_tie_between_logs_with_the_claimed_value(tmp_path: Path) -> None:
    logs = {
        "a_seed1.log": log_text(1, [("final_int8_zlib_roundtrip_exact", 1.2)], artifact=15_000_001),
        "b_seed1.log": log_text(1, [("final_int8_zlib_roundtrip_exact", 1.2)], artifact=15_000_002),
    }
    claims = {"1": {"val_bpb": 1.2, "artifact_bytes": 15_000_002}}
    rows = {row["log"]: row for row in seeds(folder_with(tmp_path, logs, {"seed_results": claims}))}
    assert (rows["a_seed1.log"]["role"], rows["b_seed1.log"]["role"]) == ("other", "claimed")


def test_without_a_matching_claim_the_first_log_and_its_last_line_count(tmp_path: Path) -> None:
    scores = [("final_int8_zlib_roundtrip_exact", 1.25), ("legal_ttt_exact", 1.2)]
    logs = {"a_seed1.log": log_text(1, scores), "b_seed1.log": log_text(1, scores)}
    rows = {row["log"]: row for row in seeds(folder_with(tmp_path, logs, {"val_bpb": 1.4}))}
    assert (rows["a_seed1.log"]["role"], rows["a_seed1.log"]["val_bpb"]) == ("counted", 1.2)
    assert rows["b_seed1.log"]["role"] == "other"
