"""Where GPTQ calibration batches come from (issue 17, class 2) and TTT compile warmups on throwaway state.

The records pass ``val_data`` into ``train_model`` (for periodic validation) and get the model back, then
``serialize`` collects Hessians from a training loader: the model is not validation data, so this is legal.
Minimal programs with the records' structure."""

from __future__ import annotations

from golfc.audit.findings import Severity
from golfc.audit.static import check_source

GPTQ_IN_SERIALIZE = """
import torch

class ShuffledSequenceLoader:
    def __init__(self, h, device):
        self.files = sorted(__import__("glob").glob(h.train_files))
    def next_batch(self):
        return torch.load(self.files[0])

def eval_val(h, device, val_data, model):
    model.eval()
    with torch.no_grad():
        nll = model(val_data.val_tokens)
    model.train()
    return nll

def train_model(h, device, val_data):
    model = torch.nn.Linear(2, 2)
    loader = ShuffledSequenceLoader(h, device)
    for step in range(h.iterations):
        model(loader.next_batch()).backward()
        if step % 100 == 0:
            eval_val(h, device, val_data, model)
    return model

def collect_hessians(model, calib_loader, h, device, n_calibration_batches=64):
    hessians = {}
    for _ in range(n_calibration_batches):
        x = calib_loader.next_batch()
        hessians["w"] = x.T @ x
    return hessians

def serialize(h, base_model):
    calib_loader = CALIB_SOURCE
    hessians = collect_hessians(base_model, calib_loader, h, "cuda")
    torch.save(hessians, "final_model.ptz")

def train_and_eval(h, device):
    val_data = ValidationData(h, device)
    base_model = train_model(h, device, val_data)
    serialize(h, base_model)
    eval_val(h, device, val_data, base_model)

class ValidationData:
    def __init__(self, h, device):
        self.val_tokens = torch.load(h.val_files)

train_and_eval(None, "cuda")
"""

ON_TRAINING = GPTQ_IN_SERIALIZE.replace("CALIB_SOURCE", "ShuffledSequenceLoader(h, 'cuda')")
ON_VALIDATION = (
    GPTQ_IN_SERIALIZE.replace("def serialize(h, base_model):", "def serialize(h, base_model, val_data):")
    .replace("CALIB_SOURCE", "val_data")
    .replace("serialize(h, base_model)\n", "serialize(h, base_model, val_data)\n")
)


def l19(source: str) -> list[tuple[Severity, str]]:
    return [(f.severity, f.message) for f in check_source(source).findings if f.rule == "L19"]


def test_hessians_from_a_training_loader_after_training_with_val_data_are_legal() -> None:
    assert [s for s, _ in l19(ON_TRAINING) if s == Severity.FAIL] == []


def test_hessians_from_validation_batches_are_l19() -> None:
    fails = [m for s, m in l19(ON_VALIDATION) if s == Severity.FAIL]
    assert fails and any("collect_hessians" in m and "validation data" in m for m in fails)


WARMUP = """
import torch

def eval_with_ttt(h, model, val_data):
    val_tokens_idx = val_data.val_tokens.to(torch.int32)
    for bsz in [h.ttt_batch_size]:
        wl = LoRA(bsz, model)
        wo = torch.optim.AdamW(wl.parameters(), lr=h.lr)
        for ctx_len in (h.chunk, h.seq_len):
            row = val_tokens_idx[:ctx_len + 1]
            ptl = model(row[:-1], row[1:], lora=wl)
            ptl.mean().backward()
            wo.step()
            wo.zero_grad()
        del wl, wo
    with torch.no_grad():
        return model(val_data.val_tokens)

class LoRA(torch.nn.Module):
    def __init__(self, bsz, model):
        super().__init__()

def train_and_eval(h, model):
    val_data = Val()
    warmup_compile = True
    print(eval_with_ttt(h, model, val_data))

class Val:
    val_tokens = torch.load("fineweb_val_000000.bin")

train_and_eval(None, None)
"""


def test_compile_warmup_on_throwaway_adapter_is_a_warning_citing_1530() -> None:
    source = WARMUP.replace("def eval_with_ttt", "def warmup_ttt_compile").replace(
        "eval_with_ttt(", "warmup_ttt_compile("
    )
    [finding] = [f for f in check_source(source).findings if f.rule == "L4"]
    assert finding.severity == Severity.WARN and "#1530" in finding.message


def test_compile_warmup_that_steps_the_scored_model_stays_l4() -> None:
    source = (
        WARMUP.replace("def eval_with_ttt", "def warmup_ttt_compile")
        .replace("eval_with_ttt(", "warmup_ttt_compile(")
        .replace(
            "wo = torch.optim.AdamW(wl.parameters(), lr=h.lr)", "wo = torch.optim.AdamW(model.parameters(), lr=h.lr)"
        )
    )
    [finding] = [f for f in check_source(source).findings if f.rule == "L4"]
    assert finding.severity == Severity.FAIL
