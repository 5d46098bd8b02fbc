"""L17 from a byte table read out of a file (issue 17, third session): the Scylla-style ``.meta.npz`` sidecar
whose per-token byte counts the audit cannot check, with legal twins. Minimal programs written for these tests."""

from __future__ import annotations

import json

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.rules.bytecount import upgrade_file_tables
from golfc.audit.static import check_source

FROM_FILE = """
import os
import numpy as np
import torch

VALIDATE = bool(int(os.environ.get("CHECK_TABLES", "0")))

def luts_from_pieces(sp, vocab):
    base_bytes = np.zeros(vocab, dtype=np.int16)
    for i in range(vocab):
        base_bytes[i] = 1 if sp.is_byte(i) else len(sp.id_to_piece(i).encode())
    return base_bytes

def luts_from_meta(path):
    with np.load(path) as data:
        base_bytes = np.asarray(data["base_bytes"], dtype=np.int16)
    return base_bytes

def load_luts(path, sp, vocab):
    if os.path.exists(path):
        table = luts_from_meta(path)
        if VALIDATE:
            if not np.array_equal(table, luts_from_pieces(sp, vocab)):
                raise ValueError("table mismatch")
        return table
    return luts_from_pieces(sp, vocab)

def eval_val(model, val_tokens, base_bytes_lut):
    y = val_tokens[1:]
    loss = model(val_tokens[:-1], y)
    return float(loss) / float(base_bytes_lut[y].sum())

def main(model, sp, val_tokens):
    lut = load_luts("tok.meta.npz", sp, 1024)
    print(eval_val(model, val_tokens, torch.tensor(lut)))

if __name__ == "__main__":
    main(torch.nn.Identity(), None, torch.zeros(9))
"""

# the check always runs: the file's table is vouched for by the tokenizer
CHECKED = FROM_FILE.replace("        if VALIDATE:\n            if not", "        if not").replace(
    "\n                raise ValueError", "\n            raise ValueError"
)


def l17(source: str) -> list[Severity]:
    return [f.severity for f in check_source(source).findings if f.rule == "L17"]


def test_file_table_is_a_warning_from_the_code():
    assert l17(FROM_FILE) == [Severity.WARN]
    (finding,) = [f for f in check_source(FROM_FILE).findings if f.rule == "L17"]
    assert "base_bytes" in finding.message and "luts_from_meta" in finding.message


def test_unconditional_check_and_pieces_are_legal():
    assert l17(CHECKED) == []
    # a loader no live path reaches is a note, not a warning
    unused = FROM_FILE.replace("    if os.path.exists(path):", "    if False:")
    assert Severity.WARN not in l17(unused)


def test_declared_tokenizer_decides():
    (warn,) = [f for f in check_source(FROM_FILE).findings if f.rule == "L17"]
    assert upgrade_file_tables([warn], "TokenMonster-derived, 998 tokens")[0].severity == Severity.FAIL
    for sentencepiece in ("SP8192 CaseOps", "sentencepiece bpe 1024", "fineweb_1024_bpe.model", None):
        assert upgrade_file_tables([warn], sentencepiece)[0].severity == Severity.WARN


def test_folder_with_a_non_sentencepiece_tokenizer_fails(tmp_path):
    (tmp_path / "train_gpt.py").write_text(FROM_FILE)
    (tmp_path / "submission.json").write_text(json.dumps({"val_bpb": 1.1, "tokenizer": "custom 998-token vocab"}))
    audit = audit_folder(tmp_path)
    assert [f.severity for f in audit.findings if f.rule == "L17"] == [Severity.FAIL]
