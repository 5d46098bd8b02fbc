"""Hostile or odd input: non-regular files, unreadable parts, symlinks, odd logs and submission.json, JSON output."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from golfc.audit import folder as folder_module
from golfc.audit import logs as logs_module
from golfc.audit.findings import Severity
from golfc.audit.folder import FolderAudit, audit_folder
from golfc.audit.logs import clean_lines, is_inline_pairs, parse_log
from golfc.audit.report import json_document

RECORDS = Path(__file__).parent / "data" / "records"
BASELINE = RECORDS / "2026-03-17_NaiveBaseline"
TTT = RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT"


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    folder = tmp_path / "baseline"
    shutil.copytree(BASELINE, folder)
    (folder / "train_gpt.py").write_text("x = 1\n")
    return folder


@pytest.fixture
def ttt(tmp_path: Path) -> Path:
    folder = tmp_path / "ttt"
    shutil.copytree(TTT, folder)
    (folder / "train_gpt.py").write_text("x = 1\n")
    return folder


def input_findings(audit: FolderAudit) -> list[tuple[Severity, str | None, str]]:
    return [(f.severity, f.file, f.message) for f in audit.findings if f.rule == "INPUT"]


# --- the script file itself ---------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_script_is_refused_without_reading(baseline: Path) -> None:
    (baseline / "train_gpt.py").unlink()
    os.mkfifo(baseline / "train_gpt.py")  # reading it would block forever
    audit = audit_folder(baseline)
    assert audit.exit_code == 2 and "not a regular file (a FIFO)" in (audit.unusable or "")


def test_script_linked_to_a_device_is_refused(baseline: Path) -> None:
    (baseline / "train_gpt.py").unlink()
    (baseline / "train_gpt.py").symlink_to("/dev/zero")
    audit = audit_folder(baseline)
    assert audit.exit_code == 2 and "character device" in (audit.unusable or "")


def test_script_over_the_read_limit_fails_without_being_read(baseline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("golfc.audit.reading.MAX_READ_BYTES", 100)
    monkeypatch.setattr("golfc.audit.unwrap.read_limited", lambda path: _limited(path, 100))
    (baseline / "train_gpt.py").write_text("#" * 1000)
    audit = audit_folder(baseline)
    assert audit.exit_code == 1 and audit.unusable is None
    assert any(f.rule == "L22" and f.severity == Severity.FAIL and "not audited" in f.message for f in audit.findings)


def _limited(path: Path, limit: int) -> bytes:
    from golfc.audit.reading import read_limited

    return read_limited(path, limit)


def test_script_symlinked_from_outside_the_folder_is_noted(baseline: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    (baseline / "train_gpt.py").unlink()
    (baseline / "train_gpt.py").symlink_to(outside)
    findings = input_findings(audit_folder(baseline))
    assert any(
        severity == Severity.WARN and "outside the submission folder" in message for severity, _, message in findings
    )


def test_a_file_given_as_folder_says_so(baseline: Path) -> None:
    audit = audit_folder(baseline / "train_gpt.py")
    assert audit.exit_code == 2 and audit.unusable is not None
    assert "is a file, not a folder" in audit.unusable


def test_every_unusable_case_has_the_same_verdict(baseline: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    audits = [
        audit_folder(tmp_path / "missing"),
        audit_folder(tmp_path / "empty"),
        audit_folder(baseline / "README.md"),
    ]
    assert [(a.exit_code, a.verdict) for a in audits] == [(2, "WARN")] * 3


# --- unreadable parts -----------------------------------------------------------------------------------------


def _deny(name: str):
    original = folder_module.read_text_limited

    def guarded(path: Path, *args: object) -> str:
        if path.name == name:
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args)

    return guarded


def test_unreadable_readme_is_one_finding(baseline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_module, "read_text_limited", _deny("README.md"))
    audit = audit_folder(baseline)
    assert (Severity.WARN, "README.md", "unreadable: Permission denied") in input_findings(audit)
    assert audit.exit_code == 0


def test_unreadable_log_is_one_finding(baseline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = logs_module.read_text_limited

    def guarded(path: Path, *args: object) -> str:
        if path.name == "train.log":
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args)

    monkeypatch.setattr(logs_module, "read_text_limited", guarded)
    assert (Severity.WARN, "train.log", "unreadable log: Permission denied") in input_findings(audit_folder(baseline))


def test_unreadable_folder_is_unusable(baseline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Path.iterdir

    def guarded(self: Path):
        if self == baseline:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "iterdir", guarded)
    audit = audit_folder(baseline)
    assert audit.exit_code == 2 and audit.unusable == "unreadable folder: Permission denied"


# --- logs -------------------------------------------------------------------------------------------------------


def test_inline_pairs_are_recognised_token_by_token() -> None:
    assert is_inline_pairs("model_dim:512 num_layers:9 tie_embeddings:True")
    assert not is_inline_pairs("model_dim:512 Not a pair")
    assert not is_inline_pairs(" leading:space")
    assert not is_inline_pairs("")


def test_adversarial_log_line_parses_in_linear_time(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "net_if:" + "a:a" * 3400 + " A\n" + "stopping_early: " + "train_time:1ms " * 700 + "\n" + "val_bpb:1.0\n"
    )
    code = f"from pathlib import Path\nfrom golfc.audit.logs import parse_log\nparse_log(Path({str(log)!r}))\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_ansi_colours_and_rank_prefixes_are_stripped(tmp_path: Path) -> None:
    text = (BASELINE / "train.log").read_text()
    coloured = tmp_path / "colour.log"
    coloured.write_text("\n".join(f"\x1b[1m{line}\x1b[0m" for line in text.splitlines()) + "\n")
    ranked = tmp_path / "ranked.log"
    ranked.write_text("\n".join(f"[default0]:{line}" for line in text.splitlines()) + "\n")
    plain = parse_log(BASELINE / "train.log")
    for path in (coloured, ranked):
        run = parse_log(path)
        figures = (run.seed, run.val_bpb, run.artifact_bytes, run.steps, run.train_time_s)
        assert figures == (plain.seed, plain.val_bpb, plain.artifact_bytes, plain.steps, plain.train_time_s)
        assert figures[0] is not None and figures[3] is not None


@pytest.mark.parametrize("prefix", ["\x1b[1m", "[rank1]: "])
def test_over_cap_artifact_line_is_seen_through_decoration(baseline: Path, prefix: str) -> None:
    log = baseline / "train.log"
    log.write_text(
        log.read_text().replace("Serialized model int8+zlib: 15815847", f"{prefix}Serialized model int8+zlib: 16815847")
    )
    audit = audit_folder(baseline)
    over = [f for f in audit.findings if f.rule == "L22" and f.severity == Severity.FAIL]
    assert len(over) == 1 and audit.exit_code == 1
    assert over[0].line is not None and "16815847" in log.read_text().splitlines()[over[0].line - 1]


ALL_RECORD_LOGS = sorted(str(path.relative_to(RECORDS)) for path in RECORDS.glob("*/*.log"))


def srun_labels(text: str, style: str) -> str:
    """``text`` as a launcher that labels every line writes it: ``srun --label`` in several styles, MPICH's
    ``-prepend-rank``, Open MPI's ``--tag-output`` (glued, as in version 4, or followed by a space)."""
    lines = text.splitlines()
    if style == "rank0":
        labelled = [f"0: {line}" for line in lines]
    elif style == "padded_ranks":  # 16 ranks: srun pads the label to the widest one (`` 3: `` … ``15: ``)
        labelled = [f"{index % 16:>2}: {line}" for index, line in enumerate(lines)]
    elif style == "empty_lines_unlabelled":
        labelled = [f"0: {line}" if line.strip() else line for line in lines]
    elif style == "around_torchrun_prefix":
        labelled = [f"1: [default1]:{line}" for line in lines]
    elif style == "mpich_prepend_rank":
        labelled = [f"[{index % 8}] {line}" for index, line in enumerate(lines)]
    elif style == "openmpi_tag_glued":
        labelled = [f"[1,{index % 8}]<stdout>:{line}" for index, line in enumerate(lines)]
    elif style == "openmpi_tag_spaced":
        labelled = [f"[1,{index % 8}]<stdout>: {line}" for index, line in enumerate(lines)]
    else:  # a batch script that printed a few lines of its own before the srun step
        labelled = ["Loading modules", "srun: job 4242 queued", *(f"0: {line}" for line in lines)]
    return "\n".join(labelled) + "\n"


@pytest.mark.parametrize(
    "style",
    [
        "rank0",
        "padded_ranks",
        "empty_lines_unlabelled",
        "around_torchrun_prefix",
        "batch_script_lines",
        "mpich_prepend_rank",
        "openmpi_tag_glued",
        "openmpi_tag_spaced",
    ],
)
@pytest.mark.parametrize("name", ALL_RECORD_LOGS)
def test_srun_rank_labels_are_stripped(tmp_path: Path, name: str, style: str) -> None:
    """A log written through ``srun --label`` says exactly what the plain log says: score, sizes, steps, times,
    hyperparameters, and the line each figure came from."""
    labelled = tmp_path / Path(name).name
    labelled.write_text(srun_labels((RECORDS / name).read_text(), style))
    plain = parse_log(RECORDS / name)
    run = parse_log(labelled)
    offset = 2 if style == "batch_script_lines" else 0
    assert {field: line - offset for field, line in run.lines.items()} == plain.lines
    assert [dataclasses.replace(s, line=s.line - offset) for s in run.scores] == plain.scores
    assert dataclasses.replace(run, path=plain.path, lines=plain.lines, scores=plain.scores) == plain
    assert plain.val_bpb is not None and plain.artifact_bytes is not None and plain.steps is not None


def test_torchrun_prefix_keeps_the_indentation_of_the_line(tmp_path: Path) -> None:
    """torchrun's ``--tee`` header is glued to the line: ``[default0]:  seed: 42`` is the block line ``  seed: 42``."""
    text = (TTT / "train_seed42.log").read_text()
    prefixed = tmp_path / "train_seed42.log"
    prefixed.write_text("".join(f"[default{index % 8}]:{line}\n" for index, line in enumerate(text.splitlines())))
    plain = parse_log(TTT / "train_seed42.log")
    assert dataclasses.replace(parse_log(prefixed), path=plain.path) == plain
    assert plain.hyperparameters["seed"] == 42


def test_over_cap_artifact_line_is_seen_through_srun_labels(baseline: Path) -> None:
    log = baseline / "train.log"
    text = log.read_text().replace("Serialized model int8+zlib: 15815847", "Serialized model int8+zlib: 16815847")
    log.write_text(srun_labels(text, "padded_ranks"))
    audit = audit_folder(baseline)
    over = [f for f in audit.findings if f.rule == "L22" and f.severity == Severity.FAIL]
    assert len(over) == 1 and audit.exit_code == 1
    assert over[0].line is not None and "16815847" in log.read_text().splitlines()[over[0].line - 1]


def test_rank_labels_are_stripped_only_from_a_labelled_log() -> None:
    ordinary = [
        "model_params:17059912",
        "layers:",
        "0: attn mlp",
        "1: attn mlp",
        "12:30:01 step:1/20 train_loss:6.9",
        "",
        "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2",
    ]
    assert clean_lines(ordinary) == ordinary  # 2 of 6 non-empty lines look labelled: a listing, not labels
    labelled = ["0: Hyperparameters:", "0:   seed: 7", "0:", " 3: 12:30:01 x", "12: 0: y", "0:no_space"]
    assert clean_lines(labelled) == ["Hyperparameters:", "  seed: 7", "", "12:30:01 x", "0: y", "0:no_space"]
    bracketed = ["[0] Hyperparameters:", "[0]   seed: 7", "[3] step:1/20", "[0]:torchrun's own"]
    assert clean_lines(bracketed) == ["Hyperparameters:", "  seed: 7", "step:1/20", "torchrun's own"]


def test_open_mpi_tags_are_stripped_keeping_the_indentation_of_a_glued_log() -> None:
    glued = ["[1,0]<stdout>:Hyperparameters:", "[1,0]<stdout>:  seed: 7", "[1,1]<stderr>:[rank1]: boom", "plain"]
    assert clean_lines(glued) == ["Hyperparameters:", "  seed: 7", "boom", "plain"]
    spaced = ["[1,0]<stdout>: Hyperparameters:", "[1,0]<stdout>:   seed: 7", "[1,0]<stdout>:", "plain"]
    assert clean_lines(spaced) == ["Hyperparameters:", "  seed: 7", "", "plain"]


def test_rank_label_detection_is_linear_on_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(("0: " + " " * 200_000 + "x\n" + " " * 200_000 + "0\n") * 20 + "0: val_bpb:1.0\n")
    code = f"from pathlib import Path\nfrom golfc.audit.logs import parse_log\nparse_log(Path({str(log)!r}))\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_utf16_log_is_read(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes((BASELINE / "train.log").read_text().encode("utf-16"))
    assert parse_log(log).val_bpb == parse_log(BASELINE / "train.log").val_bpb


def test_log_findings_name_their_line(ttt: Path) -> None:
    log = ttt / "train_seed999.log"
    log.write_text(log.read_text() + "total_eval_time:612.5s\n")
    audit = audit_folder(ttt)
    [eval_fail] = [f for f in audit.findings if f.rule == "L20" and f.severity == Severity.FAIL]
    assert eval_fail.line == len(log.read_text().splitlines())
    late = [f for f in audit.findings if f.rule == "L19"]
    assert late and all(
        f.line is not None and "Hessians" in (ttt / f.file).read_text().splitlines()[f.line - 1] for f in late
    )


# --- submission.json --------------------------------------------------------------------------------------------


def test_numbers_written_as_strings_are_checked_and_flagged(baseline: Path) -> None:
    (baseline / "submission.json").write_text('{\n  "val_bpb": "0.9",\n  "bytes_total": "99999999"\n}\n')
    audit = audit_folder(baseline)
    messages = {(f.rule, f.line, f.message) for f in audit.findings if f.file == "submission.json"}
    assert ("INPUT", 2, "val_bpb is a string, expected a number") in messages
    assert ("INPUT", 3, "bytes_total is a string, expected a number") in messages
    assert any(rule == "L22" and line == 2 and "val_bpb = 0.9" in m for rule, line, m in messages)
    assert any(rule == "L22" and line == 3 and "99,999,999" in m for rule, line, m in messages)


@pytest.mark.parametrize(
    "text",
    ['{"bytes_total": 1' + "0" * 5000 + "}", "[" * 100000 + "]" * 100000, '{"a":' * 5000 + "1" + "}" * 5000],
    ids=["huge_integer", "deep_list", "deep_object"],
)
def test_malformed_submission_json_is_one_warning(baseline: Path, text: str) -> None:
    (baseline / "submission.json").write_text(text)
    findings = [f for f in input_findings(audit_folder(baseline)) if f[1] == "submission.json"]
    assert len(findings) == 1 and findings[0][0] == Severity.WARN and findings[0][2].startswith("invalid JSON")


def test_cross_check_findings_name_the_submission_line(ttt: Path) -> None:
    data = json.loads((ttt / "submission.json").read_text())
    data["seed_results"]["42"]["val_bpb"] = 1.07
    (ttt / "submission.json").write_text(json.dumps(data, indent=2))
    lines = (ttt / "submission.json").read_text().splitlines()
    [finding] = [f for f in audit_folder(ttt).findings if "seed_results[42].val_bpb" in f.message]
    assert finding.line is not None and "1.07" in lines[finding.line - 1]


# --- JSON output --------------------------------------------------------------------------------------------------


def test_json_output_is_strict_even_with_infinite_statistics(tmp_path: Path) -> None:
    audit = FolderAudit(tmp_path, stats={"against": {"record": {"t": -math.inf, "p": math.nan}}, "values": [math.inf]})
    document = json.loads(json_document([audit]), parse_constant=lambda name: pytest.fail(f"non-strict {name}"))
    assert document["audits"][0]["stats"] == {"against": {"record": {"t": None, "p": None}}, "values": [None]}
