"""L11 in native code (issue 17, third session): an online n-gram in C, loaded through ctypes, whose hint for
position i is gated on a property of token i itself (the #1967 shape), with legal twins.

The C programs are minimal ones written for these tests; they are never compiled, only read."""

from __future__ import annotations

from pathlib import Path

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.rules.native import check_native, find_leaks, strip_code

GATED_ON_TARGET = """
#include <stdint.h>
/* hint for position i, then learn token i */
int hints(void *st, const uint16_t *tokens, int64_t n, const uint8_t *word_start_lut, float *hint_prob) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t tok = tokens[i];
        const uint8_t starts_word = word_start_lut[tok];
        if (!starts_word && depth(st) > 0) {
            hint_prob[i] = lookup(st);      // only mid-word positions get a hint
        } else {
            hint_prob[i] = 0.0f;
        }
        learn(st, tok);
    }
    return 0;
}
"""

# The legal form: the gate reads the previous token, part of the prefix of position i.
GATED_ON_PREVIOUS = GATED_ON_TARGET.replace("word_start_lut[tok]", "word_start_lut[i > 0 ? tokens[i - 1] : 0]")

# Also legal: the loop learns token i first and writes the hint for the *next* position; gating on token i is
# gating on context.
PREDICT_NEXT = """
int hints(void *st, const uint16_t *tokens, int n, const unsigned char *word_start_lut, float *next_prob) {
    for (int i = 0; i < n; i++) {
        unsigned short tok = tokens[i];
        learn(st, tok);
        if (!word_start_lut[tok]) { next_prob[i] = lookup(st); }
    }
    return 0;
}
"""

# C++ with a position array and the gate passed through an out-parameter helper and a candidate list.
THROUGH_HELPERS = """
void batch(const int64_t* pos, int n, int32_t* hints) {
    for (int i = 0; i < n; i++) {
        int64_t p = pos[i];
        auto tok = uint16_t(tokens_[p]);
        bool is_ws = has_space_[tok];
        int cand; double beta;
        word_hint(is_ws, cand, beta);
        int best = -1;
        if (cand >= 0) best = cand;
        hints[i] = best;
        word_update(tok, is_ws);
    }
}
"""

LOADER = """
import ctypes
from pathlib import Path
SRC = Path(__file__).with_name("{name}")
def load():
    return ctypes.CDLL(str(SRC.with_suffix(".so")))
"""


def test_gate_on_the_realized_token_is_found():
    (leak,) = find_leaks(GATED_ON_TARGET)
    assert leak.write == "hint_prob[i]" and leak.gate == "starts_word" and leak.token == "tok = tokens[i]"
    assert GATED_ON_TARGET.splitlines()[leak.line - 1].strip().startswith("hint_prob[i] = lookup")


def test_gate_on_the_previous_token_is_legal():
    assert find_leaks(GATED_ON_PREVIOUS) == []


def test_learning_before_the_hint_is_legal():
    assert find_leaks(PREDICT_NEXT) == []


def test_gate_through_out_parameters_and_candidates():
    (leak,) = find_leaks(THROUGH_HELPERS)
    assert leak.write == "hints[i]" and leak.gate == "best" and leak.token == "tok = tokens_[p]"
    assert find_leaks(THROUGH_HELPERS.replace("has_space_[tok]", "has_space_[tokens_[p - 1]]")) == []


def test_comments_and_strings_are_blanked_keeping_lines():
    code = 'a = 1; // tokens[i]\n/* x[i] =\n y */ s = "if (tok)";\n'
    stripped = strip_code(code)
    assert stripped.count("\n") == code.count("\n") and "tokens" not in stripped and "tok" not in stripped
    assert "a = 1;" in stripped and "s =" in stripped


def _folder(tmp_path: Path, c_source: str, loader: bool = True) -> Path:
    (tmp_path / "train_gpt.py").write_text("from ngram_helper import load\nlib = load()\n")
    (tmp_path / "ngram_state.c").write_text(c_source)
    if loader:
        (tmp_path / "ngram_helper.py").write_text(LOADER.format(name="ngram_state.c"))
    return tmp_path


def test_folder_loading_the_c_file_fails_l11(tmp_path):
    (finding,) = check_native(_folder(tmp_path, GATED_ON_TARGET))
    assert (finding.rule, finding.severity, finding.file) == ("L11", Severity.FAIL, "ngram_state.c")
    assert "starts_word" in finding.message
    audit = audit_folder(tmp_path)
    assert any(f.rule == "L11" and f.severity == Severity.FAIL for f in audit.findings)


def test_folder_twins_pass(tmp_path):
    for name in ("legal", "unused"):
        (tmp_path / name).mkdir()
    assert check_native(_folder(tmp_path / "legal", GATED_ON_PREVIOUS)) == []
    # a C file that no Python file of the folder names and loads is not part of the run
    assert check_native(_folder(tmp_path / "unused", GATED_ON_TARGET, loader=False)) == []
