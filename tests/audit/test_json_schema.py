"""``golfc audit --json``: one document shape for one folder or many, valid against golfc/audit/schema.py and
described field by field in docs/audit-json.md."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from golfc.audit.command import audit
from golfc.audit.schema import AUDIT_SCHEMA, DOCUMENT_SCHEMA, FINDING_SCHEMA, SEED_SCHEMA

RECORDS = Path(__file__).parent / "data" / "records"
SCRIPTS = Path(__file__).parent / "data" / "scripts"
DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-json.md"


def run_json(*args: str) -> tuple[dict, int]:
    app = typer.Typer()
    app.command()(audit)
    result = CliRunner().invoke(app, [*args, "--json"], terminal_width=200)
    return json.loads(result.stdout), result.exit_code


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    folder = tmp_path / "sub"
    shutil.copytree(RECORDS / "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT", folder)
    shutil.copy(SCRIPTS / "ttt_score_first_legal.py", folder / "train_gpt.py")
    return folder


def test_one_folder_and_several_give_the_same_shape(submission: Path, tmp_path: Path) -> None:
    one, one_code = run_json(str(submission), "--against", "1.2611,1.2614,1.2612")
    many, many_code = run_json(str(submission), str(RECORDS / "2026-03-17_NaiveBaseline"), str(tmp_path / "nope"))
    for document in (one, many):
        jsonschema.validate(document, DOCUMENT_SCHEMA)
    assert one.keys() == many.keys() == {"schema_version", "verdict", "exit_code", "audits"}
    assert len(one["audits"]) == 1 and len(many["audits"]) == 3
    assert one["audits"][0].keys() == many["audits"][0].keys()
    assert (one["exit_code"], one_code) == (0, 0)
    assert (many["exit_code"], many_code) == (2, 2)  # the missing folder
    assert [a["unusable"] for a in many["audits"]] == [None, "no train_gpt.py", "no such folder"]
    assert many["verdict"] == max((a["verdict"] for a in many["audits"]), key=["PASS", "WARN", "FAIL"].index)


def test_the_schema_rejects_a_document_of_another_shape(submission: Path) -> None:
    document, _ = run_json(str(submission))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document["audits"][0], DOCUMENT_SCHEMA)  # the bare per-folder object of old
    document["audits"][0]["seeds"][0]["role"] = "primary"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, DOCUMENT_SCHEMA)


def _documented_fields() -> set[str]:
    """Every backquoted name in the first column of the page's tables (``a`, `b`` rows name two)."""
    names: set[str] = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_the_page_names_every_field_of_the_schema() -> None:
    fields = set()
    for schema in (DOCUMENT_SCHEMA, AUDIT_SCHEMA, FINDING_SCHEMA, SEED_SCHEMA):
        fields |= set(schema["properties"])
    fields |= set(SEED_SCHEMA["properties"]["other_scores"]["items"]["properties"]) - {"line"}
    assert fields - _documented_fields() == set()
