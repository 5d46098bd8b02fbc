"""Python 3.12 sources on the audit's Python (issue 17, class 4) and minifier aliases of constants."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from golfc.audit.findings import Severity
from golfc.audit.parsing import inline_constant_aliases, parse_python, requote_fstrings
from golfc.audit.static import check_source
from golfc.audit.unwrap import unwrap_script

from .conftest import b85_lzma, write

PEP701 = (
    'names = {"a": [1, 2]}\nfor key in sorted(names):\n    print(f"  {key}: {", ".join(str(v) for v in names[key])}")\n'
)


def test_reused_quotes_in_a_replacement_field_are_requoted_on_one_line() -> None:
    rewritten = requote_fstrings(PEP701)
    assert rewritten.count("\n") == PEP701.count("\n")
    assert "chr(44)+chr(32)" in rewritten
    namespace: dict[str, object] = {}
    exec(compile(rewritten, "x", "exec"), namespace)  # the rewrite means the same program


def test_backslash_and_nested_fstrings_are_requoted() -> None:
    text = 'x = 3\ns = f"{"\\n".join([f"{x}", f"{"y"}"])}"\n'
    rewritten = requote_fstrings(text)
    namespace: dict[str, object] = {}
    exec(compile(rewritten, "x", "exec"), namespace)
    assert namespace["s"] == "3\ny"


def test_plain_strings_and_comments_are_left_alone() -> None:
    text = "a = 'it''s'  # f\"{x}\"\nb = r'\\d+'\nc = f'{a!r:>{10}}'\n"
    assert requote_fstrings(text) == text


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 parses PEP 701 itself")
def test_a_pep701_script_is_audited_with_its_own_line_numbers(tmp_path: Path) -> None:
    leak = (
        "import torch\n"
        + PEP701
        + 'def ttt(model, opt, val_tokens):\n    model(val_tokens).backward()\n    opt.step()\nttt(None, None, torch.load("fineweb_val_000000.bin"))\n'
    )
    result = unwrap_script(write(tmp_path, leak))
    [note] = result.problems
    assert note.severity == Severity.INFO and "PEP 701" in note.message
    [l1] = [f for f in check_source(leak).findings if f.rule == "L1"]
    assert l1.line == 8 and l1.severity == Severity.FAIL and "backward at train_gpt.py:6" in l1.message


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 parses PEP 701 itself")
def test_an_fstring_the_rewrite_cannot_read_is_a_warning_naming_python_312(tmp_path: Path) -> None:
    text = 'x = 1\ns = f"{x # a comment inside the field\n}"\n'
    payload = b85_lzma(text)
    wrapped = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({payload!r})))\n"
    [problem] = unwrap_script(write(tmp_path, wrapped)).problems
    assert problem.severity == Severity.WARN and problem.rule == "INPUT"
    assert "needs Python 3.12" in problem.message and "were not run" in problem.message


def test_a_real_syntax_error_still_raises() -> None:
    with pytest.raises(SyntaxError):
        parse_python("def broken(:\n", "x")


def test_minifier_aliases_of_true_false_none_are_inlined() -> None:
    tree = ast.parse("_A=None\n_B=True\n_C=False\ndef f(x=_A):\n    return g(requires_grad=_B, flag=_C)\n")
    assert inline_constant_aliases(tree) == {"_A": None, "_B": True, "_C": False}
    assert "requires_grad=True, flag=False" in ast.unparse(tree)


def test_an_alias_bound_twice_is_not_inlined() -> None:
    tree = ast.parse("_B=True\ndef f():\n    global _B\n    _B = False\nprint(_B)\n")
    assert inline_constant_aliases(tree) == {}


MINIFIED_SLOT = """import os, torch
_B=True
_C=False
class Hyperparameters:
    slot_enabled=bool(int(os.environ.get('SLOT_ENABLED','0')))
def eval_val_sliding(args, model, val_tokens, batch_seqs=32):
    use_slot=getattr(args,'slot_enabled',_C)
    for bi in range(0, val_tokens.numel(), batch_seqs):
        x_batch = val_tokens[bi:bi+batch_seqs]
        if use_slot:
            H = model.hidden(x_batch).detach()
            delta=torch.zeros(1,1,H.shape[-1],requires_grad=_B);opt=torch.optim.AdamW([delta],lr=0.003)
            for _ in range(5):
                opt.zero_grad();model.logits(H+delta).mean().backward();opt.step()
        with torch.no_grad():
            nll = model.nll(x_batch)
def main():
    eval_val_sliding(Hyperparameters(), None, None)
main()
"""


def test_minified_shared_slot_delta_is_l13_when_switched_on() -> None:
    findings = check_source(MINIFIED_SLOT, readme_env={"SLOT_ENABLED": "1"}).findings
    assert ("L13", Severity.FAIL) in [(f.rule, f.severity) for f in findings]


def test_minified_slot_behind_a_local_flag_that_is_off_is_a_note() -> None:
    findings = check_source(MINIFIED_SLOT).findings
    l13 = [f for f in findings if f.rule == "L13"]
    assert l13 and all(f.severity == Severity.INFO and "not live" in f.message for f in l13)
