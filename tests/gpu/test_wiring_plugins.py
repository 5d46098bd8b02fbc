"""The wiring plugins on a GPU (value_embed, unet_gated_skips, parallel_residuals, depth_recurrence together): the
inductor-compiled forward under bf16 autocast against the eager one (same weights), with the loop phase off and on,
and the compile warmup compiling both graphs so that the timed loop, which switches the loop on at half of
ITERATIONS, compiles nothing. Skips without CUDA (run on the device machine); the CPU twins are the plugins' tests."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import cpu_context, load_program, mixing_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run on the device machine")

PLUGINS = ("value_embed", "unet_gated_skips", "parallel_residuals", "depth_recurrence")
ENV = {"DEVICE": "cuda", "NUM_LAYERS": "6", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
       "VOCAB_SIZE": "64", "VE_DIM": "32", "VE_LAYERS": "4,5", "PARALLEL_START_LAYER": "4", "NUM_LOOPS": "1",
       "LOOP_START": "1", "LOOP_END": "2", "ENABLE_LOOPING_AT": "0.5", "TRAIN_SEQ_LEN": "64",
       "TRAIN_BATCH_TOKENS": "1024", "ITERATIONS": "6", "WARMUP_STEPS": "2", "VAL_LOSS_EVERY": "0",
       "MAX_WALLCLOCK_SECONDS": "0", "TRAIN_LOG_EVERY": "0"}


def test_compiled_matches_eager_with_the_loop_off_and_on():
    ns = load_program(PLUGINS, env=ENV)
    model = mixing_model(ns).cuda()
    with torch.no_grad():
        torch.nn.init.normal_(model.value_hooks[0].proj.weight, std=0.1)
        torch.nn.init.normal_(model.stack.skip_gates, std=0.5)
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    ids = torch.randint(0, 64, (4, 64), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    losses = {}
    for phases in ((), ("recurrence",)):
        model.phases = phases
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            eager, fast = model(ids, ids, reduction="none"), compiled(ids, ids, reduction="none")
        assert ((fast - eager).abs().max() / eager.abs().max()).item() < 2e-2, phases
        losses[phases] = eager.mean().item()
    assert abs(losses[()] - losses[("recurrence",)]) > 1e-4  # the loop changes the forward


def test_the_timed_loop_compiles_nothing_after_the_loop_switch():
    ns = load_program(PLUGINS, env=ENV)

    class Loader:
        def __init__(self, h, ctx):
            self.generator = torch.Generator().manual_seed(3)

        def next_batch(self, global_tokens, seq_len, grad_accum_steps):
            ids = torch.randint(0, 64, (2, seq_len + 1), generator=self.generator).cuda()
            return ids[:, :-1], ids[:, 1:]

    ns["TrainLoader"] = Loader
    h = ns["Hyperparameters"]()
    ctx = cpu_context(ns, device="cuda")
    torch._dynamo.reset()
    torch.manual_seed(0)
    run = ns["build_model"](h, ctx)
    assert run.model is not run.base_model  # compiled (inductor) on CUDA
    graphs = []

    class GraphsAtStep(ns["RunEvents"]):
        def step(self, model, step, clock_ms, lr_mul):
            graphs.append((model.phases, int(torch._dynamo.utils.counters["stats"]["unique_graphs"])))

    run.events.append(GraphsAtStep(run.base_model, h, ctx))
    ns["prepare_training"](run)
    initial = {k: v.clone() for k, v in run.base_model.state_dict().items()}
    ns["compile_warmup"](run)
    assert all(torch.equal(v, initial[k]) for k, v in run.base_model.state_dict().items())
    ns["train"](run, torch.randint(0, 64, (1000,), dtype=torch.int32))
    assert [p for p, _ in graphs] == [()] * 3 + [("recurrence",)] * 3
    assert len({n for _, n in graphs}) == 1, graphs  # no new graph in any timed step
