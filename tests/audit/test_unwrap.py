"""Static unwrapping of self-extracting scripts: every kind, nested layers, bad payloads, nothing executed."""

from __future__ import annotations

import base64
import lzma
from pathlib import Path

from golfc.audit.findings import Severity
from golfc.audit.unwrap import unwrap_script

from .conftest import SOURCE, write


def test_plain_script_is_its_own_source(tmp_path: Path) -> None:
    result = unwrap_script(write(tmp_path, SOURCE))
    assert not result.is_wrapped
    assert result.shipped_bytes == result.unwrapped_bytes == len(SOURCE.encode())
    assert [unit.text for unit in result.units] == [SOURCE]


def test_every_wrapper_kind_yields_the_source(tmp_path: Path, wrapper) -> None:
    shipped = wrapper(SOURCE)
    result = unwrap_script(write(tmp_path, shipped))
    leaves = [unit for unit in result.units if unit.is_leaf]
    assert [unit.text for unit in leaves] == [SOURCE]
    assert result.shipped_bytes == len(shipped.encode())
    assert result.unwrapped_bytes == len(SOURCE.encode())
    assert result.problems == []


def test_nested_layers_are_peeled_one_by_one(tmp_path: Path, wrappers) -> None:
    result = unwrap_script(write(tmp_path, wrappers["nested_brotli_zlib"](SOURCE)))
    assert [unit.depth for unit in result.units] == [0, 1, 2]
    assert len(result.layers) == 2
    assert "brotli" in result.layers[0] and "zlib" in result.layers[1]


def test_golfc_sections_become_units(tmp_path: Path, golfc_wrap) -> None:
    sections = {"core/prelude": "import torch\n", "core/train": "def main():\n    pass\n"}
    result = unwrap_script(write(tmp_path, golfc_wrap(sections)))
    labels = [unit.label for unit in result.units if unit.is_leaf]
    assert labels == ["train_gpt.py[core/prelude]", "train_gpt.py[core/train]"]
    assert result.unwrapped_bytes == sum(len(s.encode()) for s in sections.values())


def test_truncated_payload_is_one_problem_line(tmp_path: Path) -> None:
    full = base64.b85encode(
        lzma.compress(SOURCE.encode() * 50, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    ).decode()
    text = (
        f"import lzma as L,base64 as B\nexec(L.decompress(B.b85decode({full[:-25]!r}),format=L.FORMAT_RAW,"
        "filters=[{'id':L.FILTER_LZMA2}]))\n"
    )
    result = unwrap_script(write(tmp_path, text))
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.severity == Severity.FAIL and problem.file == "train_gpt.py" and problem.line == 2
    assert "truncated" in problem.message or "lzma" in problem.message


def test_corrupt_base85_is_reported(tmp_path: Path) -> None:
    result = unwrap_script(write(tmp_path, "import zlib,base64\nexec(zlib.decompress(base64.b85decode('~~~~~')))\n"))
    assert [p.rule for p in result.problems] == ["INPUT"]


def test_syntax_error_is_reported(tmp_path: Path) -> None:
    result = unwrap_script(write(tmp_path, "def broken(:\n"))
    assert result.problems[0].message.startswith("does not compile")


def test_payload_is_never_executed(tmp_path: Path, wrappers) -> None:
    marker = tmp_path / "ran.txt"
    evil = f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n"
    for make in wrappers.values():
        unwrap_script(write(tmp_path, make(evil)))
    assert not marker.exists()


def test_non_python_payload_is_left_as_data(tmp_path: Path) -> None:
    """Decoded data that never reaches exec/eval/compile is no wrapper: nothing to report."""
    blob = base64.b64encode(b"\x00\x01binary tokenizer").decode()
    result = unwrap_script(write(tmp_path, f"import base64\nTOK = base64.b64decode({blob!r})\n"))
    assert not result.is_wrapped
    assert result.problems == []


def test_exec_of_non_python_payload_is_a_warning(tmp_path: Path) -> None:
    blob = base64.b64encode(b"\xff\xfe binary").decode()
    result = unwrap_script(write(tmp_path, f"import base64\nexec(base64.b64decode({blob!r}))\n"))
    assert not result.is_wrapped
    assert [(p.severity, p.line) for p in result.problems] == [(Severity.WARN, 2)]
