"""Each legality rule: a leaky script is caught with its rule id, the legal twin passes, plain or wrapped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from golfc.audit.findings import Finding, Severity
from golfc.audit.static import check_source, check_units
from golfc.audit.unwrap import unwrap_script

SCRIPTS = Path(__file__).parent / "data" / "scripts"

LEAKY = {
    "ttt_train_first_L1.py": ("L1", 25),
    "ttt_multi_epoch_L2.py": ("L2", 28),
    "ttt_eval_mode_train_first_L2.py": ("L2", 27),  # scored in eval mode after the update on the chunk
    "ttt_prequant_L3.py": ("L3", 38),
    "ttt_warmup_L4.py": ("L4", 32),
    "rescore_two_pass_L5.py": ("L5", 21),
    "oracle_min_L6.py": ("L6", 16),
    "oracle_where_L6.py": ("L6", 18),  # torch.where(nll_a < nll_b, nll_a, nll_b)
    "ngram_target_key_L7.py": ("L7", 21),
    "ngram_helper_hash_L7.py": ("L7", 23),  # the target enters the key through a hashing helper (`nxt`)
    "ngram_flat_modulo_L7.py": ("L7", 20),  # (ctx_hash * VOCAB + tgt) % FULL_BUCKETS folds pairs together
    "tilt_target_gate_L11.py": ("L11", 16),
    "slot_scored_positions_L12.py": ("L12", 27),
    "slot_method_all_positions_L12.py": ("L12", 32),  # only the shared y = w[:, 1:] shift is sliced
    "slot_shared_delta_L13.py": ("L13", 22),
    "gptq_val_calibration_L19.py": ("L19", 25),
    "gptq_object_val_L19.py": ("L19", 31),  # gq = GPTQ(model); gq.add_batch(val batch)
    "network_eval_NET.py": ("NET", 16),
    "network_shell_eval_NET.py": ("NET", 11),  # subprocess curl in eval_val
    "network_helper_eval_NET.py": ("NET", 13),  # urlopen in a helper that eval_val calls
    "smear_no_bos_L18.py": ("L18", 9),
    "ttt_next_chunk_L1.py": ("L1", 28),  # scores chunk ci, then trains on chunk ci + 1 (an index offset)
    "ttt_chunk_list_offset_L1.py": ("L1", 27),  # a helper trains on chunks[i + 1] after chunks[i] is scored
    "ngram_exact_key_L7.py": ("L7", 22),  # dict keyed (ctx, tgt) exactly, over a context count of another dict
    "ngram_candidates_ctx_denominator_L8.py": ("L8", 27),  # gold column over another table's context count
    "ngram_train_prefill_eval_L9.py": ("L9", 23),  # eval pre-fills a bigram table from the training shards
    "mixer_entropy_expert_L10.py": ("L10", 20),  # entropy stacked as a Hedge expert
    "cache_hit_gate_L11.py": ("L11", 21),  # the mixture switches on `tgt in recent`
}
LEGAL = [
    "ttt_score_first_legal.py",  # L1, L2
    "ttt_eval_mode_score_first_legal.py",  # L1: scored after model.eval(), without no_grad
    "ttt_prequant_legal.py",  # L3
    "ttt_warmup_legal.py",  # L4
    "sliding_window_legal.py",  # L5 (one pass), L6 (stack without min)
    "oracle_mix_legal.py",  # L6
    "oracle_where_entropy_legal.py",  # L6: torch.where on the entropy, known before the target
    "ngram_token_only_legal.py",  # L7: counts keyed by the target only when updated after scoring
    "ngram_2d_table_legal.py",  # L7/L11: table[ctx_hash, tgt] and logp[t, tgt] read gold probabilities
    "ngram_flat_table_legal.py",  # L7: the same table stored flat, counts[ctx_hash * 1024 + tgt]
    "tilt_context_gate_legal.py",  # L11
    "slot_context_only_legal.py",  # L12, L13
    "slot_method_context_mask_legal.py",  # L12: fit on ctx_mask, a method of a class
    "gptq_selfgen_calibration_legal.py",  # L19
    "gptq_object_selfgen_legal.py",  # L19: the same GPTQ object fed self-generated tokens
    "network_none_legal.py",  # NET
    "smear_bos_masked_legal.py",  # L18
    "ttt_chunk_list_legal.py",  # L1: the helper trains on chunks[i] after it is scored
    "ngram_exact_context_legal.py",  # L7: a dict keyed on the context only, its row normalized by its sum
    "ngram_candidates_row_sum_legal.py",  # L8: the gold column over the sum of its row
    "ngram_train_table_in_artifact_legal.py",  # L9: the table is built while training and shipped
    "mixer_entropy_weight_legal.py",  # L10: the entropy sets the mixing weight
    "cache_context_gate_legal.py",  # L11: the gate is whether the context is cached
]


def fails(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return [(f.rule, f.line) for f in findings if f.severity == Severity.FAIL]


def test_every_leaky_script_has_a_legal_twin() -> None:
    assert len(LEAKY) == 28 and len(LEGAL) == 23
    assert {p.name for p in SCRIPTS.glob("*.py")} >= set(LEAKY) | set(LEGAL)


@pytest.mark.parametrize("name", sorted(LEAKY))
def test_leak_is_a_fail_with_its_rule_and_line(name: str) -> None:
    rule, line = LEAKY[name]
    findings = check_source((SCRIPTS / name).read_text(), name).findings
    assert (rule, line) in fails(findings)
    hit = next(f for f in findings if f.rule == rule)
    assert hit.file == name and hit.message


@pytest.mark.parametrize("name", LEGAL)
def test_legal_pattern_has_no_fail_and_no_warning(name: str) -> None:
    findings = check_source((SCRIPTS / name).read_text(), name).findings
    assert [f for f in findings if f.severity >= Severity.WARN] == []


@pytest.mark.parametrize("name", sorted(LEAKY) + LEGAL)
def test_wrapping_changes_nothing_but_the_file_label(tmp_path: Path, wrapper, name: str) -> None:
    source = (SCRIPTS / name).read_text()
    path = tmp_path / "train_gpt.py"
    path.write_text(wrapper(source), encoding="utf-8")
    unwrapped = unwrap_script(path)
    wrapped_findings = check_units(unwrapped.units).findings
    plain_findings = check_source(source, name).findings
    assert sorted((f.rule, f.severity, f.line) for f in wrapped_findings) == sorted(
        (f.rule, f.severity, f.line) for f in plain_findings
    )
    assert all(f.file.startswith("train_gpt.py[") for f in wrapped_findings if f.file)


def test_golfc_sections_keep_their_own_line_numbers(golfc_wrap, tmp_path: Path) -> None:
    leaky = (SCRIPTS / "ttt_train_first_L1.py").read_text()
    head, tail = leaky.split("def main():")
    path = tmp_path / "train_gpt.py"
    path.write_text(golfc_wrap({"core/eval": head, "core/train": "def main():" + tail}), encoding="utf-8")
    findings = check_units(unwrap_script(path).units).findings
    assert ("L1", 25) in fails(findings)
    assert next(f for f in findings if f.rule == "L1").file == "train_gpt.py[core/eval]"


def test_backward_on_training_data_is_not_a_leak() -> None:
    source = """
import torch
def train(model, train_loader, opt):
    for step in range(10):
        x, y = train_loader.next_batch()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
"""
    assert check_source(source).findings == []


def test_leak_through_a_helper_is_reported_at_the_deciding_call() -> None:
    source = """
import torch
def step_on(model, opt, tokens):
    loss = model(tokens).sum()
    loss.backward()
    opt.step()

def main(model, opt, val_tokens):
    for chunk in val_tokens.split(1024):
        step_on(model, opt, chunk)
    with torch.no_grad():
        nll_sum = 0
        nll_sum += model(val_tokens).sum()
main(None, None, None)
"""
    findings = check_source(source).findings
    assert fails(findings) == [("L1", 10)]
    assert "through `step_on`" in findings[0].message


def test_helper_called_after_scoring_is_score_first() -> None:
    source = """
import torch
def step_on(model, opt, tokens):
    loss = model(tokens).sum()
    loss.backward()
    opt.step()

@torch.no_grad()
def score(model, tokens):
    nll = model(tokens)
    total = torch.zeros(())
    total += nll.sum()
    return total

def main(model, opt, val_tokens):
    results = []
    for chunk in val_tokens.split(1024):
        results.append(score(model, chunk))
        step_on(model, opt, chunk)
    return results
main(None, None, None)
"""
    assert check_source(source).findings == []


@pytest.mark.parametrize(("guard", "severity"), [("==", Severity.FAIL), ("!=", Severity.INFO)])
def test_main_guard_runs_only_when_the_script_is_the_program(guard: str, severity: Severity) -> None:
    source = f"""
import torch
def leak(model, opt, val_tokens):
    loss = model(val_tokens).sum()
    loss.backward()
    opt.step()
    with torch.no_grad():
        nll_sum = 0
        nll_sum += model(val_tokens).sum()
if __name__ {guard} "__main__":
    leak(None, None, None)
"""
    assert [f.severity for f in check_source(source).findings if f.rule == "L1"] == [severity]


def test_download_of_val_shards_in_data_preparation_is_a_warning_not_a_fail() -> None:
    source = """
import subprocess
def prepare_data():
    subprocess.run(["curl", "-sO", "https://example.com/fineweb_val_000000.bin"], check=True)
prepare_data()
"""
    findings = check_source(source).findings
    assert [(f.rule, f.severity) for f in findings] == [("NET", Severity.WARN)]


def _rewritten(name: str, old: str, new: str) -> str:
    """A fixture script with one passage replaced; the passage must be there exactly once."""
    source = (SCRIPTS / name).read_text()
    assert source.count(old) == 1, old
    return source.replace(old, new)


SLOT_SCRIPTS = {  # the SLOT scripts above, written with the other ways of giving a tensor gradients
    "slot_scored_positions_L12.py": "L12",
    "slot_method_all_positions_L12.py": "L12",
    "slot_shared_delta_L13.py": "L13",
    "slot_context_only_legal.py": None,
    "slot_method_context_mask_legal.py": None,
}
REQUIRES_GRAD_IDIOMS = {
    "chained": (r", requires_grad=True\)$", ").requires_grad_()"),
    "statement": (r"^( +)(\w+) = (.*), requires_grad=True\)$", r"\1\2 = \3)\n\1\2.requires_grad_(True)"),
    "attribute": (r"^( +)(\w+) = (.*), requires_grad=True\)$", r"\1\2 = \3)\n\1\2.requires_grad = True"),
}


@pytest.mark.parametrize("idiom", sorted(REQUIRES_GRAD_IDIOMS))
@pytest.mark.parametrize("name", sorted(SLOT_SCRIPTS))
def test_slot_is_recognised_whichever_way_the_delta_gets_gradients(name: str, idiom: str) -> None:
    pattern, replacement = REQUIRES_GRAD_IDIOMS[idiom]
    source, count = re.subn(pattern, replacement, (SCRIPTS / name).read_text(), flags=re.M)
    assert count == 1  # the delta's creation was rewritten
    findings = check_source(source, name).findings
    rule = SLOT_SCRIPTS[name]
    if rule is None:  # legal SLOT: not mistaken for test-time training either (L1/L2)
        assert [(f.rule, f.severity) for f in findings if f.severity >= Severity.WARN] == []
    else:
        assert [f.rule for f in findings if f.severity == Severity.FAIL] == [rule]


def test_requires_grad_false_is_not_a_trainable_delta() -> None:
    source = _rewritten(
        "slot_shared_delta_L13.py",
        "torch.zeros(1, 1, hidden.shape[-1], requires_grad=True)",
        "torch.zeros(1, 1, hidden.shape[-1]).requires_grad_(False)",
    )
    assert "L13" not in {f.rule for f in check_source(source, "x.py").findings}


def test_download_helper_called_before_evaluation_is_a_warning_not_a_fail() -> None:
    source = """
import urllib.request
import torch
def download(url):
    return urllib.request.urlopen(url).read()
def eval_val(model, val_tokens):
    with torch.no_grad():
        return model(val_tokens).sum()
def main():
    download("https://example.com/fineweb_val_000000.bin")
    val_tokens = torch.load("fineweb_val_000000.bin")
    print(eval_val(None, val_tokens))
main()
"""
    assert [(f.rule, f.severity, f.line) for f in check_source(source).findings] == [("NET", Severity.WARN, 5)]
    called_by_eval = source.replace("return model(val_tokens).sum()", "return model(val_tokens).sum() + len(download('u'))")
    assert [(f.rule, f.severity, f.line) for f in check_source(called_by_eval).findings] == [("NET", Severity.FAIL, 5)]


SHARED_DELTA_LINE = "        delta = torch.zeros(1, 1, hidden.shape[-1], requires_grad=True)\n"
SHARED_DELTA_IDIOMS = {  # other ways of writing a delta that every window of the batch shares (L13)
    "tuple": "        delta = torch.zeros((1, 1, hidden.shape[-1]), requires_grad=True)\n",
    "named_shape": "        shape = (1, 1, hidden.shape[-1])\n        delta = torch.zeros(shape, requires_grad=True)\n",
    "starred_shape": "        shape = [1, 1, hidden.shape[-1]]\n        delta = torch.zeros(*shape, requires_grad=True)\n",
    "named_one": "        shared = 1\n        delta = torch.zeros(shared, 1, hidden.shape[-1], requires_grad=True)\n",
    "full": "        delta = torch.full((1, 1, hidden.shape[-1]), 0.0, requires_grad=True)\n",
    "new_zeros": "        delta = hidden.new_zeros(1, 1, hidden.shape[-1], requires_grad=True)\n",
    "zeros_like_slice": "        delta = torch.zeros_like(hidden[:1, :1], requires_grad=True)\n",
    "vector": "        delta = torch.zeros(hidden.shape[-1], requires_grad=True)\n",
    "vector_size": "        delta = torch.zeros(hidden.size(-1), requires_grad=True)\n",
    "parameter_vector": "        delta = torch.nn.Parameter(torch.zeros(hidden.size(-1)))\n",
    "named_dim": "        dim = hidden.shape[-1]\n        delta = torch.zeros(dim, requires_grad=True)\n",
    "scalar_tensor": "        delta = torch.tensor(0.0, requires_grad=True)\n",  # e.g. a temperature fit per batch
}
PER_WINDOW_DELTA_LINE = "        delta = torch.zeros(bsz, 1, hidden.shape[-1], requires_grad=True)\n"
PER_WINDOW_DELTA_IDIOMS = {  # the legal twin's [bsz, 1, d] delta written other ways: still one per window
    "zeros_like_slice": "        delta = torch.zeros_like(hidden[:, :1], requires_grad=True)\n",
    "named_shape": "        shape = (bsz, 1, hidden.shape[-1])\n        delta = torch.zeros(shape, requires_grad=True)\n",
    "full": "        delta = torch.full((bsz, 1, hidden.shape[-1]), 0.0, requires_grad=True)\n",
    "new_zeros": "        delta = hidden.new_zeros(bsz, 1, hidden.shape[-1], requires_grad=True)\n",
    "shape_of_a_slice": "        delta = torch.zeros(hidden[:, :1].shape, requires_grad=True)\n",
    "parameter": "        delta = torch.nn.Parameter(hidden.new_zeros(bsz, 1, hidden.size(-1)))\n",
}


@pytest.mark.parametrize("idiom", sorted(SHARED_DELTA_IDIOMS))
def test_shared_delta_is_l13_however_its_shape_is_written(idiom: str) -> None:
    source = _rewritten("slot_shared_delta_L13.py", SHARED_DELTA_LINE, SHARED_DELTA_IDIOMS[idiom])
    delta_line = next(i for i, text in enumerate(source.splitlines(), 1) if text.lstrip().startswith("delta = "))
    findings = check_source(source, "x.py").findings
    assert fails(findings) == [("L13", delta_line)]
    assert "shared by a batch of windows" in next(f.message for f in findings if f.rule == "L13")


@pytest.mark.parametrize("idiom", sorted(PER_WINDOW_DELTA_IDIOMS))
def test_per_window_delta_is_legal_however_its_shape_is_written(idiom: str) -> None:
    source = _rewritten("slot_context_only_legal.py", PER_WINDOW_DELTA_LINE, PER_WINDOW_DELTA_IDIOMS[idiom])
    findings = check_source(source, "x.py").findings
    assert [(f.rule, f.severity) for f in findings if f.severity >= Severity.WARN] == []


def test_unbatched_shared_delta_is_a_warning() -> None:
    """Without a batch of windows in sight, a [1, 1, d] or [d] delta is only suspicious."""
    source = '''
import torch
import torch.nn.functional as F
def eval_slot(model, head, val_tokens):
    x, y = val_tokens[None, :-1], val_tokens[None, 1:]
    hidden = model(x).detach()
    delta = torch.zeros(hidden.size(-1), requires_grad=True)
    opt = torch.optim.AdamW([delta], lr=0.01)
    F.cross_entropy(head(hidden + delta)[0, :-64], y[0, :-64]).backward()
    opt.step()
    with torch.no_grad():
        return F.cross_entropy(head(hidden + delta)[0, -64:], y[0, -64:])
print(eval_slot(torch.nn.Embedding(8, 4), torch.nn.Linear(4, 8), torch.load("fineweb_val_000000.bin")))
'''
    findings = check_source(source, "x.py").findings
    l13 = [(f.severity, f.line) for f in findings if f.rule == "L13"]
    assert l13 == [(Severity.WARN, 7)]
    assert "no batch dimension" in next(f.message for f in findings if f.rule == "L13")


SMEAR_UNMASKED = {  # the leaky SmearGate, holding a BOS marker that it never uses to mask (still L18)
    "stored_unused": ("        self.gate = nn.Parameter(torch.zeros(dim))\n",
                      "        self.gate = nn.Parameter(torch.zeros(dim))\n        self.bos_id = BOS_ID\n"),
    "parameter_unused": ("    def forward(self, ids, x):\n", "    def forward(self, ids, x, doc_ids=None):\n"),
    "logged": ("        g = torch.sigmoid(self.gate)\n",
               "        g = torch.sigmoid(self.gate)\n        print(f\"bos={BOS_ID}\")\n"),
}
SMEAR_MASKED = {  # the legal SmearGate's mask written other ways
    "masked_fill": ("        return (1 - g) * x + g * prev * not_bos\n",
                    "        return (1 - g) * x + g * prev.masked_fill(~not_bos, 0.0)\n"),
    "index_write": ("        not_bos = (ids != BOS_ID).unsqueeze(-1)\n        return (1 - g) * x + g * prev * not_bos\n",
                    "        bos_positions = ids.eq(BOS_ID)\n        prev[bos_positions] = 0\n"
                    "        return (1 - g) * x + g * prev\n"),
    "mask_from_caller": ("    def forward(self, ids, x):\n", "    def forward(self, ids, x, not_bos=1.0):\n"),
}


@pytest.mark.parametrize("idiom", sorted(SMEAR_UNMASKED))
def test_smear_holding_an_unused_bos_marker_is_still_l18(idiom: str) -> None:
    source = _rewritten("smear_no_bos_L18.py", *SMEAR_UNMASKED[idiom])
    assert [rule for rule, _ in fails(check_source(source, "x.py").findings)] == ["L18"]


@pytest.mark.parametrize("idiom", sorted(SMEAR_MASKED))
def test_smear_masking_bos_however_written_is_legal(idiom: str) -> None:
    source = _rewritten("smear_bos_masked_legal.py", *SMEAR_MASKED[idiom])
    if idiom == "mask_from_caller":  # the caller computes the mask, the gate multiplies by it
        source = source.replace("        not_bos = (ids != BOS_ID).unsqueeze(-1)\n", "")
    findings = check_source(source, "x.py").findings
    assert [(f.rule, f.severity) for f in findings if f.severity >= Severity.WARN] == []
    assert "L18" not in {f.rule for f in findings}
