"""Leaks the audit missed or gave other rules (issue 17, class 6), each with a legal twin that stays clean.

Minimal programs written for these tests with the structure of the leaky PRs (never their code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from golfc.audit.findings import Severity
from golfc.audit.folder import audit_folder
from golfc.audit.static import check_source

from .conftest import RECORDS

SLOT_BODY = """
def eval_val_slot(args, model, val_tokens, batch_seqs=32):
    total = 0.0
    for bi in range(0, val_tokens.numel(), batch_seqs * 1024):
        x_batch = val_tokens[bi:bi + batch_seqs * 1024].view(batch_seqs, 1024)
        with torch.no_grad():
            H = model.hidden(x_batch)
        DELTA
        for _ in range(args.slot_steps):
            opt.zero_grad()
            model.loss_from_hidden(ADAPT(H[:, :-64]), x_batch[:, 1:-63]).backward()
            opt.step()
        with torch.no_grad():
            total += model.nll_from_hidden(ADAPT(H), x_batch)[:, -64:].sum().item()
    return total

eval_val_slot(None, None, torch.load("fineweb_val_000000.bin"))
"""

SLOT_MODULE = """
import torch
from torch import nn

class SlotDelta(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(SHAPE))
    def forward(self, h):
        return h + self.delta
""" + SLOT_BODY.replace(
    "DELTA", "slot = SlotDelta(H.size(-1))\n        opt = torch.optim.AdamW(slot.parameters(), lr=1e-3)"
).replace("ADAPT", "slot")

SLOT_NEW_ZEROS = "import torch\n" + SLOT_BODY.replace(
    "DELTA", "delta = H.new_zeros(1, 1, H.size(-1)).requires_grad_()\n        opt = torch.optim.AdamW([delta], lr=1e-3)"
).replace("ADAPT(H[:, :-64])", "H[:, :-64] + delta").replace("ADAPT(H)", "H + delta")


def found(source: str) -> list[tuple[str, Severity]]:
    return [(f.rule, f.severity) for f in check_source(source).findings]


def test_a_slot_module_with_one_delta_for_the_whole_batch_is_l13() -> None:
    assert ("L13", Severity.FAIL) in found(SLOT_MODULE.replace("SHAPE", "1, 1, shape"))


def test_a_slot_module_with_a_delta_per_window_is_not_l13() -> None:
    rules = found(SLOT_MODULE.replace("SHAPE", "32, 1, shape"))
    assert not [r for r in rules if r[0] in ("L12", "L13") and r[1] == Severity.FAIL]


def test_new_zeros_delta_shared_by_the_batch_is_l13() -> None:
    assert ("L13", Severity.FAIL) in found(SLOT_NEW_ZEROS)


GPTQ_AT_EVAL = """
import torch

class TokenStream:
    def __init__(self, pattern):
        self.tokens = torch.load(pattern)
    def take(self, n):
        return self.tokens[:n]

def hessian_from_batches(model, stream, n):
    acc = None
    for _ in range(n):
        x = model.embed(stream.take(2048))
        acc = x.T @ x if acc is None else acc + x.T @ x
    return acc

def evaluate(args, model):
    stream = TokenStream(args.SOURCE)
    acc = hessian_from_batches(model, stream, 16)
    with torch.no_grad():
        return model.quantized(acc)(TokenStream(args.val_files).take(100000)).mean()

class Hyperparameters:
    val_files = "./data/fineweb_val_*.bin"
    train_files = "./data/fineweb_train_*.bin"

evaluate(Hyperparameters(), None)
"""


def test_hessians_from_a_stream_over_the_val_files_knob_are_l19() -> None:
    assert ("L19", Severity.FAIL) in found(GPTQ_AT_EVAL.replace("SOURCE", "val_files"))


def test_hessians_from_the_train_files_knob_are_not_l19_fail() -> None:
    assert ("L19", Severity.FAIL) not in found(GPTQ_AT_EVAL.replace("SOURCE", "train_files"))


BYTE_TABLE = """
import torch

def build_luts(sp, vocab):
    base_bytes = torch.zeros(vocab)
    for i in range(vocab):
        if sp.is_byte(i):
            base_bytes[i] = FALLBACK
        else:
            base_bytes[i] = len(sp.id_to_piece(i).encode("utf-8"))
    return base_bytes

def eval_val(model, val_tokens, base_bytes):
    nll_sum = torch.zeros(()); byte_count = torch.zeros(())
    with torch.no_grad():
        x, y = val_tokens[:-1], val_tokens[1:]
        nll_sum += torch.nn.functional.cross_entropy(model(x), y, reduction="none").sum()
        byte_count += ADDED
    return nll_sum / byte_count

eval_val(None, torch.load("fineweb_val_000000.bin"), build_luts(None, 1024))
"""


def l17(fallback: str, added: str) -> list[Severity]:
    source = BYTE_TABLE.replace("FALLBACK", fallback).replace("ADDED", added)
    return [severity for rule, severity in found(source) if rule == "L17"]


def test_byte_fallback_tokens_counted_as_three_bytes_are_l17() -> None:
    assert l17("3", "base_bytes[y].sum()") == [Severity.FAIL]


def test_a_byte_total_scaled_by_a_constant_is_l17() -> None:
    assert l17("1", "base_bytes[y].sum() * 1.1") == [Severity.FAIL]


def test_the_records_byte_accounting_is_not_l17() -> None:
    assert l17("1", "base_bytes[y].to(torch.float64).sum()") == []


TWO_PASS = """
import torch

def eval_val(model, val_tokens, stride=64):
    nll_sum = torch.zeros(())
    cache = {}
    with torch.no_grad():
        for ws in range(0, val_tokens.numel(), stride):
            x = val_tokens[ws:ws + 1024]
            logits = model(x[:-1])
            cache[ws] = logits
            FIRST
        for ws in range(0, val_tokens.numel(), stride):
            x = val_tokens[ws:ws + 1024]
            nll = torch.nn.functional.cross_entropy(model.refine(SECOND), x[1:], reduction="none")
            nll_sum += nll.sum()
    return nll_sum

eval_val(None, torch.load("fineweb_val_000000.bin"))
"""


def test_a_second_pass_that_reads_what_the_first_pass_stored_is_l5() -> None:
    source = TWO_PASS.replace("FIRST", "pass").replace("SECOND", "cache[ws], cache")
    assert ("L5", Severity.FAIL) in found(source)


def test_one_pass_over_validation_is_not_l5() -> None:
    source = TWO_PASS.replace("FIRST", "nll_sum += torch.nn.functional.cross_entropy(logits, x[1:]).sum()")
    source = source.split(
        "        for ws in range(0, val_tokens.numel(), stride):\n            x = val_tokens[ws:ws + 1024]\n            nll ="
    )[0]
    source += "    return nll_sum\n\neval_val(None, torch.load('fineweb_val_000000.bin'))\n"
    assert "L5" not in [rule for rule, _ in found(source)]


PREFIX_READER = """
import lzma, torch

PREFIX = "NAME"

def eval_val(model, val_tokens):
    prefix = torch.frombuffer(lzma.decompress(open(PREFIX, "rb").read()), dtype=torch.int16)
    with torch.no_grad():
        return model(torch.cat([prefix, val_tokens])).mean()

def main():
    print(eval_val(None, torch.load("./data/fineweb_val_000000.bin")))

main()
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "sub"
    shutil.copytree(RECORDS / "2026-03-17_NaiveBaseline", target)
    return target


def l21(folder: Path, name: str, content: bytes, script_name: str | None = None) -> list[tuple[Severity, str]]:
    (folder / name).write_bytes(content)
    (folder / "train_gpt.py").write_text(PREFIX_READER.replace("NAME", script_name or name))
    return [(f.severity, f.message) for f in audit_folder(folder).findings if f.rule == "L21"]


def test_a_shipped_validation_blob_read_at_eval_is_l21(folder: Path) -> None:
    [(severity, message)] = l21(folder, "val_prefix.xz", b"\xfd7zXZ" + bytes(200))
    assert severity == Severity.FAIL and "val_prefix.xz" in message and "paid prefix" in message


def test_a_shipped_token_shard_under_any_name_is_l21(folder: Path) -> None:
    shard = (20240520).to_bytes(4, "little") + bytes(1020)
    found_l21 = l21(folder, "blob.bin", shard)
    assert found_l21 and all(severity == Severity.FAIL for severity, _ in found_l21)
    assert "token shard" in found_l21[0][1]


def test_a_data_file_the_program_never_names_is_not_l21(folder: Path) -> None:
    assert l21(folder, "val_prefix.xz", bytes(100), script_name="elsewhere.xz") == []


BYTE_MIXTURE = """
import math, torch

def eval_val_ppm(model, val_tokens, piece_bytes, byte_model):
    nll_sum = 0.0
    with torch.no_grad():
        probs = torch.softmax(model(val_tokens[:-1]), -1)
        for t in range(val_tokens.numel() - 1):
            tok = int(val_tokens[t + 1])
            n_bytes = len(piece_bytes[tok])
            spread = probs[t, tok] ** (1.0 / n_bytes)
            for b in piece_bytes[tok]:
                nll_sum -= math.log(0.5 * spread + 0.5 * byte_model.predict(b))
                byte_model.update(b)
    return nll_sum

eval_val_ppm(None, torch.load("fineweb_val_000000.bin"), None, None)
"""


def test_a_token_probability_spread_over_bytes_and_mixed_with_ppm_is_l14() -> None:
    assert ("L14", Severity.FAIL) in found(BYTE_MIXTURE)


def test_squared_errors_are_not_byte_spreading() -> None:
    source = "import torch\ndef quant_error(w, recon):\n    return (w - recon).pow(2).mean()\nquant_error(None, None)\n"
    assert "L14" not in [rule for rule, _ in found(source)]
