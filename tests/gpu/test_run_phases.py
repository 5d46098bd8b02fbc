"""On the GPU, with inductor: a run phase that changes the forward (a layer schedule switched at half of ITERATIONS)
is compiled by the compile warmup, so the timed loop compiles nothing; the warmup leaves the weights as it found
them. The CPU twin (tests/test_hooks.py::test_hook_run_events) counts graphs with a counting backend."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import cpu_context, load_program

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

RUNTIME = """
import torch

GRAPHS_AT_STEP = []


class DoubleLayerEvents(RunEvents):
    phases = {"double": 0.5}

    def step(self, model, step, clock_ms, lr_mul):
        GRAPHS_AT_STEP.append(int(torch._dynamo.utils.counters["stats"]["unique_graphs"]))


def double_schedule(h, phases):
    return (0, 1, 1) if "double" in phases else (0, 1)


class EventsLoader:
    def __init__(self, h, ctx):
        self.generator, self.vocab, self.device = torch.Generator().manual_seed(3), h.vocab_size, ctx.device

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = torch.randint(0, self.vocab, (2, seq_len + 1), generator=self.generator).to(self.device)
        return ids[:, :-1], ids[:, 1:]
"""

BUILD = """
from golfc import Impl, hookimpl

@hookimpl
def golfc_run_events():
    return Impl(module="phases_runtime", symbols="DoubleLayerEvents")

@hookimpl
def golfc_layer_schedule():
    return Impl(module="phases_runtime", symbols="double_schedule")

@hookimpl
def golfc_data_loader():
    return Impl(module="phases_runtime", symbols="EventsLoader")
"""


def test_the_timed_loop_compiles_nothing_after_a_phase_switch(plugin_dir):
    plugin_dir.add("phases", BUILD, RUNTIME)
    env = {"DEVICE": "cuda", "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
           "VOCAB_SIZE": "64", "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "1024", "ITERATIONS": "6",
           "WARMUP_STEPS": "2", "VAL_LOSS_EVERY": "0", "MAX_WALLCLOCK_SECONDS": "0", "TRAIN_LOG_EVERY": "0"}
    ns = load_program(("phases",), env=env, plugins_dir=plugin_dir.root)
    h = ns["Hyperparameters"]()
    ctx = cpu_context(ns, device="cuda")
    torch._dynamo.reset()
    torch.manual_seed(0)
    run = ns["build_model"](h, ctx)
    assert run.model is not run.base_model  # compiled (inductor) on CUDA
    ns["prepare_training"](run)
    initial = {k: v.clone() for k, v in run.base_model.state_dict().items()}
    ns["compile_warmup"](run)
    for k, v in run.base_model.state_dict().items():
        assert torch.equal(v, initial[k]), k
    ns["train"](run, torch.randint(0, 64, (1000,), dtype=torch.int32))
    counts = ns["GRAPHS_AT_STEP"]
    assert len(counts) == 6 and len(set(counts)) == 1, counts  # no new graph in any timed step
