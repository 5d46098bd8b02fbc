"""The baseline's numbers, bit for bit: three training steps of the default program (model, optimizers, schedule,
the core's train_step) from a fixed seed on fixed batches, and the weights afterwards, equal values recorded
before the run-time architecture changes (event lists, per-forward context, the block/schedule/skip split,
optimizer transforms, parameter tags). A change of any op or of its order in the default path shows up here."""

from __future__ import annotations

import hashlib

import torch

from golfc.testing import cpu_context, load_program

ENV = {"VOCAB_SIZE": "64", "NUM_LAYERS": "4", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
       "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256", "DEVICE": "cpu", "WARMUP_STEPS": "0"}

# Recorded on the tree before the change (commit 3d94c5a), one torch thread.
RECORDED_LOSSES = ["0x1.0a41960000000p+2", "0x1.1032100000000p+2", "0x1.1ab3860000000p+2"]
RECORDED_WEIGHT_SUM = "0x1.d66fae48506e0p+8"
RECORDED_NAMES_SHA256 = "eae3991236b1c4ad0c306b4828020b085cad7f3d6cfa5b9ef295015325571df2"  # the state-dict names in order (bench/parity.py maps them to the reference's)


class FixedBatches:
    """A data loader that hands out the same seeded batches in the same order every time."""

    def __init__(self, vocab):
        generator = torch.Generator().manual_seed(7)
        self.batches = [torch.randint(0, vocab, (2, 17), generator=generator) for _ in range(24)]
        self.i = 0

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = self.batches[self.i % len(self.batches)]
        self.i += 1
        return ids[:, :-1], ids[:, 1:]


def three_steps():
    ns = load_program(env=ENV)
    h = ns["Hyperparameters"]()
    ctx = cpu_context(ns, vocab=64)
    torch.manual_seed(h.seed)
    run = ns["build_model"](h, ctx)
    ns["prepare_training"](run)
    loader = FixedBatches(h.vocab_size)
    losses = [ns["train_step"](run, step, 0.0, loader, None).item() for step in range(3)]
    weight_sum = sum(p.detach().double().sum().item() for p in run.base_model.parameters())
    names = hashlib.sha256("\n".join(run.base_model.state_dict()).encode()).hexdigest()
    return [x.hex() for x in losses], float(weight_sum).hex(), names


def test_the_baseline_trains_to_the_recorded_bits():
    losses, weight_sum, names = three_steps()
    assert (losses, weight_sum, names) == (RECORDED_LOSSES, RECORDED_WEIGHT_SUM, RECORDED_NAMES_SHA256)


if __name__ == "__main__":
    print(three_steps())
