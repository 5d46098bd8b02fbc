"""Score-first TTT as the records write it (issue 17, class 1): the audit follows, per chunk, whether the chunk
was scored under no_grad before the model trained on it, through helpers that accumulate the score and helpers
that train on the tokens their caller hands them. Minimal programs with the records' structure."""

from __future__ import annotations

from golfc.audit.findings import Severity
from golfc.audit.static import check_source

HEADER = """
import glob, torch
import torch.nn.functional as F

def _add_chunk_score(ptl, tgt, base_bytes_lut, loss_sum, byte_sum, token_count):
    lbl = ptl.to(torch.float64)
    loss_sum += lbl.sum()
    byte_sum += base_bytes_lut[tgt].to(torch.float64).sum()
    token_count += lbl.numel()
"""

# Per-document LoRA TTT (2026-03-17 LoRA TTT shape): forward with grad, score chunk ci through a helper
# under no_grad, then one step on the same chunk.
LORA_SCORE_FIRST = (
    HEADER
    + """
def eval_val_ttt_lora(args, model, lora, opt, base_bytes_lut):
    all_tokens = torch.cat([torch.load(f) for f in sorted(glob.glob(args.val_files))])
    loss_sum = torch.zeros(()); byte_sum = torch.zeros(()); token_count = torch.zeros(())
    for ci in range(args.num_chunks):
        chunk = all_tokens[ci * args.chunk : (ci + 1) * args.chunk + 1]
        x, y = chunk[:-1], chunk[1:]
        ptl = model(x, y, lora=lora)
        with torch.no_grad():
            _add_chunk_score(ptl, y, base_bytes_lut, loss_sum, byte_sum, token_count)
        opt.zero_grad()
        ptl.mean().backward()
        opt.step()
    return float(loss_sum / token_count)

def main(args, model, lora, opt, lut):
    print(eval_val_ttt_lora(args, model, lora, opt, lut))

main(None, None, None, None, None)
"""
)

LORA_TRAIN_FIRST = LORA_SCORE_FIRST.replace(
    """        with torch.no_grad():
            _add_chunk_score(ptl, y, base_bytes_lut, loss_sum, byte_sum, token_count)
        opt.zero_grad()
        ptl.mean().backward()
        opt.step()""",
    """        opt.zero_grad()
        ptl.mean().backward()
        opt.step()
        with torch.no_grad():
            _add_chunk_score(model(x, y, lora=lora), y, base_bytes_lut, loss_sum, byte_sum, token_count)""",
)

# Phased TTT (2026-04-13 shape): a `while True` work queue of document batches claimed by index; each batch is
# scored chunk by chunk, and once enough documents are scored a global SGD pass trains on those scored documents.
PHASED = (
    HEADER
    + """
def train_global_sgd(h, base_model, val_tokens):
    opt = torch.optim.SGD(base_model.parameters(), lr=h.lr)
    for ci in range(h.chunks):
        local = val_tokens[ci * h.chunk : (ci + 1) * h.chunk + 1]
        loss = base_model(local[:-1], local[1:])
        loss.backward()
        opt.step()

def eval_val_ttt_phased(h, base_model, val_data, base_bytes_lut, claim_next):
    all_tokens = val_data.val_tokens
    batches = build_batches(all_tokens)
    loss_sum = torch.zeros(()); byte_sum = torch.zeros(()); token_count = torch.zeros(())
    scored_docs = []
    while True:
        queue_idx = claim_next(len(batches))
        if queue_idx >= len(batches):
            break
        batch = batches[queue_idx]
        for ci in range(h.chunks):
            x = all_tokens[batch[0] + ci * h.chunk : batch[0] + (ci + 1) * h.chunk]
            y = all_tokens[batch[0] + ci * h.chunk + 1 : batch[0] + (ci + 1) * h.chunk + 1]
            ptl = base_model(x, y)
            with torch.no_grad():
                _add_chunk_score(ptl, y, base_bytes_lut, loss_sum, byte_sum, token_count)
        scored_docs.extend(batch)
        if len(scored_docs) >= h.prefix_docs:
            global_tokens = torch.cat([val_data.val_tokens[s : s + n] for s, n in scored_docs])
            train_global_sgd(h, base_model, global_tokens)
    return float(loss_sum / token_count)

def build_batches(tokens):
    return [(0, 10)]

def main(h, model, val_data, lut):
    print(eval_val_ttt_phased(h, model, val_data, lut, lambda n: n))

main(None, None, None, None)
"""
)

# The illegal twin: the same global SGD helper trains on every validation token before any is scored.
GLOBAL_FIRST = PHASED.replace(
    "    scored_docs = []\n    while True:",
    "    scored_docs = []\n    train_global_sgd(h, base_model, val_data.val_tokens)\n    while True:",
)


def ttt_fails(source: str) -> list[tuple[str, int | None]]:
    findings = check_source(source).findings
    return [(f.rule, f.line) for f in findings if f.severity == Severity.FAIL and f.rule in ("L1", "L2", "L3", "L4")]


def test_lora_ttt_scored_through_a_helper_under_no_grad_is_legal() -> None:
    assert ttt_fails(LORA_SCORE_FIRST) == []


def test_lora_ttt_that_steps_before_scoring_the_chunk_is_l1_or_l2() -> None:
    [(rule, line)] = ttt_fails(LORA_TRAIN_FIRST)
    assert rule in ("L1", "L2")
    assert LORA_TRAIN_FIRST.splitlines()[line - 1].strip() == "ptl.mean().backward()"


def test_phased_ttt_training_on_scored_documents_is_legal() -> None:
    assert ttt_fails(PHASED) == []


def test_global_sgd_on_unscored_validation_tokens_is_l1_at_the_call() -> None:
    fails = ttt_fails(GLOBAL_FIRST)
    lines = [GLOBAL_FIRST.splitlines()[line - 1].strip() for _, line in fails]
    assert ("L1", "train_global_sgd(h, base_model, val_data.val_tokens)") in [
        (rule, text) for (rule, _), text in zip(fails, lines)
    ]


def test_a_training_helper_that_nobody_calls_is_still_reported_as_dead_code() -> None:
    source = HEADER + PHASED.split("def eval_val_ttt_phased")[0].split(HEADER)[1]
    [finding] = [f for f in check_source(source).findings if f.rule == "L1"]
    assert finding.severity == Severity.INFO and "never called" in finding.message


PREQUANT_THROUGH_A_RUNNER = """
import torch

class ValidationData:
    def __init__(self, h, device):
        self.val_tokens = torch.load(h.val_files)

def prequant_ttt_adapt_adamw(h, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=h.lr)
    for epoch in range(h.epochs):
        for i in range(0, val_tokens.numel(), 2048):
            x = val_tokens[i:i + 2048]
            model(x[:-1], x[1:]).backward()
            opt.step()

def serialize(h, model):
    torch.save(model.state_dict(), "final_model.pt")

def eval_val(h, model, val_data):
    with torch.no_grad():
        return model(val_data.val_tokens).mean()

def run(h, model, val_data):
    prequant_ttt_adapt_adamw(h, model, val_data.val_tokens)
    serialize(h, model)
    return eval_val(h, model, val_data)

def train_and_eval(h, device):
    val_data = ValidationData(h, device)
    print(run(h, torch.nn.Linear(2, 2), val_data))

train_and_eval(None, "cuda")
"""


def test_pre_quant_ttt_through_parameters_is_l3_where_the_artifact_is_saved() -> None:
    """The training helper defers to its caller, which serializes right after: pre-quant TTT, at the call."""
    [(rule, line)] = ttt_fails(PREQUANT_THROUGH_A_RUNNER)
    assert rule == "L3"
    assert PREQUANT_THROUGH_A_RUNNER.splitlines()[line - 1].strip().startswith("prequant_ttt_adapt_adamw(")


SCORE_AND_STEP = """
import torch
import torch.nn.functional as F

def eval_ttt(model, opt, val_tokens, chunk=2048):
    loss_sum = 0.0
    token_count = 0
    for ci in range(val_tokens.numel() // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
        loss = F.cross_entropy(model(x), y)
        loss_sum += loss.item() * chunk
        token_count += chunk
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss_sum / token_count

eval_ttt(None, None, torch.load("fineweb_val_000000.bin"))
"""


def test_a_detached_loss_summed_into_the_reported_score_before_the_step_is_score_first() -> None:
    """One forward per chunk: its loss is committed (.item() into the returned sum), then stepped on: legal."""
    assert ttt_fails(SCORE_AND_STEP) == []


def test_a_detached_loss_that_is_only_logged_is_no_score() -> None:
    """Pre-quant TTT logs its training loss the same way; that number is not the reported score."""
    logged = SCORE_AND_STEP.replace("    return loss_sum / token_count", "    print(loss_sum / token_count)")
    assert [rule for rule, _ in ttt_fails(logged)] == ["L1"]
