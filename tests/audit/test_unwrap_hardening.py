"""Wrappers that used to slip past the unwrapper or crash it: deep nesting, dynamic exec, corrupt codecs."""

from __future__ import annotations

import base64
import lzma
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard

from golfc.audit import unwrap
from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.static import check_source
from golfc.audit.unwrap import MAX_LAYERS, unwrap_script

from .conftest import SOURCE, b85_lzma, write


def wrap_layers(source: str, layers: int) -> str:
    for _ in range(layers):
        source = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({b85_lzma(source)!r})))\n"
    return source


def problems(result: unwrap.Unwrapped) -> list[tuple[Severity, int | None, str]]:
    return [(p.severity, p.line, p.message) for p in result.problems]


def test_the_deepest_allowed_layer_is_still_checked(tmp_path: Path) -> None:
    result = unwrap_script(write(tmp_path, wrap_layers(SOURCE, MAX_LAYERS)))
    assert result.problems == []
    assert [unit.text for unit in result.units if unit.is_leaf] == [SOURCE]


def test_one_layer_too_many_fails_and_counts_no_wrapper_as_source(tmp_path: Path) -> None:
    result = unwrap_script(write(tmp_path, wrap_layers(SOURCE, MAX_LAYERS + 1)))
    [(severity, line, message)] = problems(result)
    assert severity == Severity.FAIL and line == 2 and "left unchecked" in message
    assert all(SOURCE != unit.text for unit in result.units)
    assert result.unwrapped_bytes == 0


@pytest.mark.parametrize(
    "script",
    [
        "import lzma,base64\nexec(lzma.decompress(base64.b85decode(open(__file__).read().split('#'*2)[-1])))\n"
        "##{payload}\n",
    ],
    ids=["read_from_file"],  # a helper decoder function is read now (test_unwrap_scopes.py), a reversed payload too
)
def test_exec_of_code_that_cannot_be_decoded_is_a_warning_naming_the_line(tmp_path: Path, script: str) -> None:
    payload = b85_lzma(SOURCE)
    text = script.format(payload=payload)
    result = unwrap_script(write(tmp_path, text))
    exec_line = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("exec("))
    assert problems(result) == [
        (
            Severity.WARN,
            exec_line,
            "exec'd code not checked: the code passed to exec() cannot be decoded statically",
        )
    ]


def test_a_reversed_payload_is_reversed_back_and_read(tmp_path: Path) -> None:
    text = f"import lzma,base64\nP={b85_lzma(SOURCE)[::-1]!r}\nexec(lzma.decompress(base64.b85decode(P[::-1])))\n"
    result = unwrap_script(write(tmp_path, text))
    assert result.problems == [] and result.is_wrapped
    assert [unit.text for unit in result.units if unit.is_leaf] == [SOURCE]


def test_payload_built_with_plus_equals_is_reconstructed(tmp_path: Path) -> None:
    payload = b85_lzma(SOURCE)
    chunks = "".join(f"P+={payload[i : i + 40]!r}\n" for i in range(0, len(payload), 40))
    result = unwrap_script(
        write(tmp_path, f"import lzma as L,base64 as B\nP=''\n{chunks}exec(L.decompress(B.b85decode(P)))\n")
    )
    assert result.problems == []
    assert [unit.text for unit in result.units if unit.is_leaf] == [SOURCE]


def test_payload_name_rebound_in_a_loop_is_unchecked_not_corrupt(tmp_path: Path) -> None:
    payload = b85_lzma(SOURCE)
    text = (
        "import lzma,base64\nP=''\n"
        f"for part in ({payload[:50]!r}, {payload[50:]!r}):\n    P = P + part\n"
        "exec(lzma.decompress(base64.b85decode(P)))\n"
    )
    assert problems(unwrap_script(write(tmp_path, text))) == [
        (Severity.WARN, 5, "exec'd code not checked: the code passed to exec() cannot be decoded statically")
    ]


def test_failed_decodes_that_never_reach_exec_are_not_wrappers(tmp_path: Path) -> None:
    text = (
        "import base64\ntry:\n    'h\\u00e9llo'.encode('utf-8').decode('ascii')\nexcept UnicodeDecodeError:\n    pass\n"
        "try:\n    base64.b64decode('abc')\nexcept Exception:\n    pass\n"
    )
    assert unwrap_script(write(tmp_path, text)).problems == []


@pytest.mark.parametrize(
    "script",
    [
        f"import brotli,base64\nexec(brotli.decompress(base64.b64decode({base64.b64encode(b'not brotli at all').decode()!r})))\n",
        f"import zstandard\nexec(zstandard.ZstdDecompressor().decompress({b'not zstd data'!r}))\n",
        f"import brotli\nexec(brotli.decompress({brotli.compress(SOURCE.encode())[:-4]!r}))\n",
        f"import zstandard\nexec(zstandard.ZstdDecompressor().decompress({zstandard.ZstdCompressor().compress(b'x=1' * 999)[:-5]!r}))\n",
    ],
    ids=["brotli_garbage", "zstd_garbage", "brotli_truncated", "zstd_truncated"],
)
def test_corrupt_brotli_and_zstd_payloads_fail_like_the_others(tmp_path: Path, script: str) -> None:
    [(severity, line, message)] = problems(unwrap_script(write(tmp_path, script)))
    assert severity == Severity.FAIL and line == 2 and message.startswith("unreadable or truncated wrapper payload")


def test_decompression_bomb_says_it_is_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unwrap, "MAX_DECODED_BYTES", 1000)
    for codec, blob in (("lzma", lzma.compress(b"#" * 5000)), ("zlib", zlib.compress(b"#" * 5000))):
        text = (
            f"import {codec},base64\nexec({codec}.decompress(base64.b85decode({base64.b85encode(blob).decode()!r})))\n"
        )
        [(severity, _, message)] = problems(unwrap_script(write(tmp_path, text)))
        assert severity == Severity.FAIL and "larger than" in message and "end-of-stream" not in message


@pytest.mark.parametrize(
    "growth",
    [
        "d=lambda s:s+s\nexec(d(d(d(d(d(d(P)))))))",  # decoders calling decoders, doubling each time
        "exec(P.replace('#','####').replace('#','####'))",  # a method that multiplies its input
        "d=lambda s:lzma.decompress(base64.b85decode(s))+lzma.decompress(base64.b85decode(s))\nexec(d(P))",
    ],
    ids=["inline_doubling", "replace", "decoder_joining_two_decodes"],
)
def test_values_built_past_the_size_limit_say_they_are_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, growth: str
) -> None:
    """No value the evaluator builds may pass the decoders' own limit, however it was grown."""
    monkeypatch.setattr(unwrap, "MAX_DECODED_BYTES", 1000)
    payload = b85_lzma("#" * 600) if "lzma" in growth else "#" * 600
    text = f"import lzma,base64\nP={payload!r}\n{growth}\n"
    [(severity, line, message)] = problems(unwrap_script(write(tmp_path, text)))
    assert severity == Severity.FAIL and line == text.count("\n") and "larger than the 0 MiB limit" in message


def test_payload_with_a_syntax_error_warns_like_the_script_itself(tmp_path: Path) -> None:
    """An unparseable payload is input the audit could not check (WARN), never a rule break (FAIL)."""
    broken = b85_lzma("def f(:\n pass\n")
    text = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({broken!r})))\n"
    [(severity, line, message)] = problems(unwrap_script(write(tmp_path, text)))
    assert severity == Severity.WARN and line == 1 and message.startswith("does not compile")
    assert "static legality checks (L1-L21) were not run" in message


def test_long_module_level_concatenation_does_not_crash(tmp_path: Path) -> None:
    source = "".join(f"x{i} = {i * i}\n" for i in range(400))
    payload = b85_lzma(source)
    terms = " + ".join(repr(payload[i : i + 2]) for i in range(0, len(payload), 2))
    assert terms.count("+") > 490
    result = unwrap_script(
        write(tmp_path, f"import lzma,base64\nP = {terms}\nexec(lzma.decompress(base64.b85decode(P)))\n")
    )
    assert result.problems == []
    assert [unit.text for unit in result.units if unit.is_leaf] == [source]


def test_code_python_cannot_compile_for_depth_is_a_finding(tmp_path: Path) -> None:
    text = "x = " + "+".join(["'a'"] * 5000) + "\n"
    [(severity, _, message)] = problems(unwrap_script(write(tmp_path, text)))
    assert severity == Severity.FAIL and "nested too deeply" in message


def test_static_checks_too_deep_for_the_rules_are_a_finding() -> None:
    findings = check_source("x = " + "+".join(["'a'"] * 1500) + "\n").findings
    assert [(f.severity, f.rule) for f in findings] == [(Severity.FAIL, "INPUT")]
    assert "left unchecked" in findings[0].message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "train_gpt.py"
    path.write_bytes(b"\xef\xbb\xbf" + SOURCE.encode())
    result = unwrap_script(path)
    assert result.problems == []
    assert result.shipped_bytes == len(SOURCE.encode()) + 3
    assert result.units[0].text == SOURCE


LEAKY_SLOT = Path(__file__).parent / "data" / "scripts" / "slot_scored_positions_L12.py"


@pytest.mark.parametrize(
    "form", ["exec({src!r})", "exec(compile({src!r}, 'train', 'exec'))", "CODE = {src!r}\nexec(CODE)"]
)
def test_code_exec_d_from_a_string_literal_is_checked_by_the_rules(tmp_path: Path, form: str) -> None:
    """A leak written inside exec("...") is still a leak: the literal is unpacked and checked like a layer."""
    write(tmp_path, form.format(src=LEAKY_SLOT.read_text(encoding="utf-8")) + "\n")
    audit = audit_folder(tmp_path)
    assert any(f.rule == "L12" and f.severity == Severity.FAIL for f in audit.findings), audit.findings
    assert not any("not checked" in f.message for f in audit.findings)


def test_a_small_literal_exec_leaves_the_script_its_own_source(tmp_path: Path) -> None:
    script = SOURCE + "exec('x = 1')\n"
    result = unwrap_script(write(tmp_path, script))
    assert result.problems == []
    assert result.unwrapped_bytes == len(script.encode())  # the literal is inside the script's own bytes
    assert [unit.text for unit in result.units] == [script, "x = 1"]
