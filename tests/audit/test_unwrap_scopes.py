"""Which decodes reach exec is decided by Python's scopes: a name in one function is not a name in another."""

from __future__ import annotations

from pathlib import Path

import pytest

from golfc.audit.findings import Severity
from golfc.audit.unwrap import unwrap_script

from .conftest import SOURCE, b85_lzma, write

UNCHECKED = "exec'd code not checked: the code passed to exec() cannot be decoded statically"


def problems(text: str, tmp_path: Path) -> list[tuple[Severity, int | None, str]]:
    return [(p.severity, p.line, p.message) for p in unwrap_script(write(tmp_path, text)).problems]


def exec_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("exec("))


# A harmless decode (binary data, or a payload that is no wrapper) and an exec of a different variable that
# happens to share its name. The exec's code is unknown: one warning at the exec, and no wrapper layer.
UNRELATED = {
    "two_functions": (
        "import base64\n\n\ndef load_table():\n    blob = base64.b64decode('AAECAw==')\n    return list(blob)\n\n\n"
        "def run_snippet(path):\n    with open(path) as handle:\n        blob = handle.read()\n    exec(blob)\n"
    ),
    "parameter_shadows_module_name": (
        "import base64\nblob = base64.b64decode('AAECAw==')\n\n\ndef run_snippet(blob):\n    exec(blob)\n"
    ),
    "local_shadows_module_name": (
        "import lzma, base64\nCODE = lzma.decompress(base64.b85decode({payload!r}))\n\n\n"
        "def run_snippet(path):\n    CODE = open(path).read()\n    exec(CODE)\n"
    ),
    "method_and_function": (
        "import base64\n\n\nclass Tokenizer:\n    def __init__(self):\n        self.table = base64.b64decode('AAECAw==')\n"
        "        code = self.table\n\n\ndef run_snippet(code):\n    exec(code)\n"
    ),
}


@pytest.mark.parametrize("shape", sorted(UNRELATED))
def test_a_decode_in_another_scope_is_not_what_exec_runs(tmp_path: Path, shape: str) -> None:
    text = UNRELATED[shape].format(payload=b85_lzma("x = 1\n"))
    result = unwrap_script(write(tmp_path, text))
    assert [(p.severity, p.line, p.message) for p in result.problems] == [(Severity.WARN, exec_line(text), UNCHECKED)]
    assert not result.is_wrapped
    assert result.unwrapped_bytes == len(text.encode())


def test_a_function_parameter_is_not_read_from_the_module_name_it_shadows(tmp_path: Path) -> None:
    """``P`` inside ``run`` is whatever the caller passes, not the module's ``P``: decoding that would check the
    wrong code."""
    text = (
        f"import lzma, base64\nP = {b85_lzma(SOURCE)!r}\n\n\n"
        "def run(P):\n    exec(lzma.decompress(base64.b85decode(P)))\n\n\nrun(open('other.txt').read())\n"
    )
    result = unwrap_script(write(tmp_path, text))
    assert [(p.severity, p.line, p.message) for p in result.problems] == [(Severity.WARN, 6, UNCHECKED)]
    assert not result.is_wrapped


# Payloads that do reach exec across scopes: each must still be unwrapped to SOURCE.
REACHING = {
    "module_name_read_in_a_function": (
        "import lzma, base64\nCODE = lzma.decompress(base64.b85decode({payload!r}))\n\n\n"
        "def main():\n    exec(CODE)\n\n\nmain()\n"
    ),
    "module_literal_decoded_in_a_function": (
        "import lzma, base64\nP = {payload!r}\n\n\ndef main():\n    exec(lzma.decompress(base64.b85decode(P)))\n\n\nmain()\n"
    ),
    "global_declared_in_a_function": (
        "import lzma, base64\n\n\ndef load():\n    global CODE\n    CODE = lzma.decompress(base64.b85decode({payload!r}))\n\n\n"
        "load()\nexec(CODE)\n"
    ),
    "global_read_in_another_function": (
        "import lzma, base64\n\n\ndef load():\n    global CODE\n    CODE = lzma.decompress(base64.b85decode({payload!r}))\n\n\n"
        "def run():\n    exec(CODE)\n\n\nload()\nrun()\n"
    ),
    "closure": (
        "import lzma, base64\n\n\ndef main():\n    code = lzma.decompress(base64.b85decode({payload!r}))\n\n"
        "    def run():\n        exec(code)\n\n    run()\n\n\nmain()\n"
    ),
    "nonlocal": (
        "import lzma, base64\n\n\ndef main():\n    code = None\n\n    def load():\n        nonlocal code\n"
        "        code = lzma.decompress(base64.b85decode({payload!r}))\n\n    load()\n    exec(code)\n\n\nmain()\n"
    ),
    "loader_function_with_parameters": (
        "import lzma as _L, base64 as _B\n\n\ndef load(G, parts):\n    for p in parts:\n"
        "        n, s = p.split('\\1', 1)\n        exec(compile(s, '<' + n + '>', 'exec'), G)\n\n\n"
        "load(globals(), _L.decompress(_B.b85decode({payload!r})).decode().split('\\0'))\n"
    ),
    "loader_function_with_keyword_arguments": (
        "import lzma as _L, base64 as _B\n\n\ndef load(G, parts):\n    for p in parts:\n"
        "        n, s = p.split('\\1', 1)\n        exec(compile(s, '<' + n + '>', 'exec'), G)\n\n\n"
        "load(G=globals(), parts=_L.decompress(_B.b85decode({payload!r})).decode().split('\\0'))\n"
    ),
    "attribute_set_in_one_method_read_in_another": (
        "import lzma, base64\n\n\nclass Loader:\n    def __init__(self):\n"
        "        self.code = lzma.decompress(base64.b85decode({payload!r}))\n\n    def run(self):\n"
        "        exec(self.code)\n\n\nLoader().run()\n"
    ),
    "comprehension_in_a_function": (
        "import lzma, base64\nCODE = lzma.decompress(base64.b85decode({payload!r}))\n\n\n"
        "def main():\n    [exec(CODE) for _ in range(1)]\n\n\nmain()\n"
    ),
}


@pytest.mark.parametrize("shape", sorted(REACHING))
def test_a_payload_that_reaches_exec_across_scopes_is_unwrapped(tmp_path: Path, shape: str) -> None:
    sections = "main\x01" + SOURCE if "loader" in shape else SOURCE
    text = REACHING[shape].format(payload=b85_lzma(sections))
    result = unwrap_script(write(tmp_path, text))
    assert result.problems == []
    assert result.is_wrapped
    assert [unit.text for unit in result.units if unit.is_leaf] == [SOURCE]


# Decoders the submission defines: read (their one return expression evaluated with the call's arguments), never run.
DECODER_FUNCTIONS = {
    "def": "import lzma as L, base64 as B\n\n\ndef d(s):\n    return L.decompress(B.b85decode(s))\n\n\nexec(d({payload!r}))\n",
    "def_with_docstring_and_keyword_call": (
        "import lzma as L, base64 as B\n\n\ndef d(s):\n    \"\"\"Unpack.\"\"\"\n    return L.decompress(B.b85decode(s))\n\n\n"
        "exec(d(s={payload!r}))\n"
    ),
    "lambda": "import lzma as L,base64 as B\nd=lambda s:L.decompress(B.b85decode(s))\nexec(d({payload!r}))\n",
    "lambda_calling_a_lambda": (
        "import lzma as L,base64 as B\nu=lambda b:L.decompress(b)\nd=lambda s:u(B.b85decode(s))\nexec(d({payload!r}))\n"
    ),
    "parameter_named_like_a_module_name": (
        "import lzma as L, base64 as B\nP = 'not the payload'\n\n\ndef d(P):\n    return L.decompress(B.b85decode(P))\n\n\n"
        "exec(d({payload!r}))\n"
    ),
    "decoder_applied_to_a_module_literal": (
        "import lzma as L,base64 as B\nP={payload!r}\nd=lambda s:L.decompress(B.b85decode(s)).decode()\nexec(d(P))\n"
    ),
}


@pytest.mark.parametrize("shape", sorted(DECODER_FUNCTIONS))
def test_a_decoder_the_submission_defines_is_read_not_run(tmp_path: Path, shape: str) -> None:
    text = DECODER_FUNCTIONS[shape].format(payload=b85_lzma(SOURCE))
    result = unwrap_script(write(tmp_path, text))
    assert result.problems == []
    assert result.is_wrapped and "lzma" in result.layers[0]
    assert [unit.text for unit in result.units if unit.is_leaf] == [SOURCE]


# Functions that cannot be read as one expression of their parameters: the exec stays unchecked (a warning at
# its line), and nothing is guessed.
UNREADABLE_DECODERS = {
    "two_statements": (
        "import lzma as L, base64 as B\n\n\ndef d(s):\n    t = B.b85decode(s)\n    return L.decompress(t)\n\n\n"
        "exec(d({payload!r}))\n"
    ),
    "decorated": (
        "import functools, lzma as L, base64 as B\n\n\n@functools.cache\ndef d(s):\n    return L.decompress(B.b85decode(s))\n\n\n"
        "exec(d({payload!r}))\n"
    ),
    "defined_twice": (
        "import lzma as L, base64 as B\n\n\ndef d(s):\n    return L.decompress(B.b85decode(s))\n\n\n"
        "def d(s):\n    return s\n\n\nexec(d({payload!r}))\n"
    ),
    "rebound_in_a_loop": (
        "import lzma as L,base64 as B\nd=lambda s:L.decompress(B.b85decode(s))\nfor d in [print]:\n    pass\n"
        "exec(d({payload!r}))\n"
    ),
    "default_argument": "import lzma as L,base64 as B\nd=lambda s,k=B:L.decompress(k.b85decode(s))\nexec(d({payload!r}))\n",
    "recursive": "import lzma as L,base64 as B\nd=lambda s:d(s)\nexec(d({payload!r}))\n",
    "wrong_arity": "import lzma as L,base64 as B\nd=lambda s,t:L.decompress(B.b85decode(s))\nexec(d({payload!r}))\n",
}


@pytest.mark.parametrize("shape", sorted(UNREADABLE_DECODERS))
def test_a_decoder_that_is_not_one_expression_leaves_the_exec_unchecked(tmp_path: Path, shape: str) -> None:
    text = UNREADABLE_DECODERS[shape].format(payload=b85_lzma(SOURCE))
    result = unwrap_script(write(tmp_path, text))
    assert [(p.severity, p.line, p.message) for p in result.problems] == [(Severity.WARN, exec_line(text), UNCHECKED)]
    assert not result.is_wrapped
