"""plugins/depth_recurrence: the looped schedule (the records' index lists), the forward before the switch is the
plain one and after it the looped one, eager and compiled (both graphs compiled by the warmup, nothing after the
switch), the phase switch in the timed loop, bad spans as one line, the contracts, the adapting eval; e2e."""

from __future__ import annotations

import pytest
import torch

from golfc.testing import check_contract, cpu_context, load_program, mixing_model, run_emitted
from tests.adapting_eval import check_adapting_eval_uses_plugin

ENV = {"DEVICE": "cpu", "NUM_LAYERS": "5", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
       "VOCAB_SIZE": "64", "NUM_LOOPS": "1", "LOOP_START": "1", "LOOP_END": "2", "ENABLE_LOOPING_AT": "0.5"}
LOOPED = (0, 1, 2, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def ns():
    return load_program(("depth_recurrence",), env=ENV)


def test_the_records_index_lists():
    ns = load_program(("depth_recurrence",), env={**ENV, "NUM_LAYERS": "11", "NUM_LOOPS": "2", "LOOP_START": "3",
                                                  "LOOP_END": "5"})
    h = ns["Hyperparameters"]()
    schedule = ns["layer_schedule"](h, ("recurrence",))
    assert schedule[:8] == (0, 1, 2, 3, 4, 5, 3, 4) and schedule[8:] == (5, 3, 4, 5, 6, 7, 8, 9, 10)  # 2026-04-27
    assert ns["layer_schedule"](h, ()) == tuple(range(11))
    model = ns["GPT"](h)
    assert model.stack.skip_weights.shape == (8, 16)  # sized by the 17 virtual layers, as the records do
    explicit = load_program(("depth_recurrence",), env={**ENV, "LOOP_SCHEDULE": "0,1,1,2,3,4"})
    assert explicit["layer_schedule"](explicit["Hyperparameters"](), ("recurrence",)) == (0, 1, 1, 2, 3, 4)


def _models(ns):
    """The plugin's GPT and the plain program's GPT with the same weights (the plain one has fewer skip rows)."""
    model = mixing_model(ns)
    base = load_program((), env=ENV)
    plain = base["GPT"](base["Hyperparameters"]())
    state = model.state_dict()
    state["stack.skip_weights"] = state["stack.skip_weights"][: plain.stack.skip_weights.shape[0]]
    plain.load_state_dict(state, strict=True)
    with torch.no_grad():
        model.stack.skip_weights.uniform_(0.5, 1.5)
    state["stack.skip_weights"] = model.stack.skip_weights[:2].detach().clone()
    plain.load_state_dict(state, strict=True)
    return model, plain


def _looped_by_hand(model, ids):
    """The blocks in LOOPED order; positions 0-2 push, 3-5 pop in reverse with skip_weights[0..2], 6 none."""
    stack = model.stack
    x = x0 = torch.nn.functional.rms_norm(model.tok_emb(ids), (16,))
    fctx = type("F", (), {"phases": ("recurrence",), "cache": {}, "value_hooks": (), "ids": ids})()
    saved = []
    for depth, layer in enumerate(LOOPED):
        if 3 <= depth <= 5:
            x = x + stack.skip_weights[depth - 3] * saved.pop()
        x = stack.blocks[layer](x, x0, fctx)
        if depth < 3:
            saved.append(x)
    return x


def test_the_forward_is_the_plain_one_before_the_switch_and_the_loop_after(ns):
    model, plain = _models(ns)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        assert model.stack.skip_weights.shape == (3, 16) and model.phases == ()
        assert torch.equal(model.hidden(ids), plain.hidden(ids))
        model.phases = ("recurrence",)
        looped = model.hidden(ids)
        assert not torch.allclose(looped, plain.hidden(ids), atol=1e-3)
        torch.testing.assert_close(looped, _looped_by_hand(model, ids), atol=1e-5, rtol=1e-5)


def test_the_compiled_forward_switches_with_the_phase(ns):
    model, plain = _models(ns)
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=counting_backend, fullgraph=True, dynamic=False)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        before = compiled(ids, ids, reduction="none")
        assert torch.equal(before, plain(ids, ids, reduction="none")) and len(graphs) == 1
        model.phases = ("recurrence",)
        after = compiled(ids, ids, reduction="none")
        assert len(graphs) == 2 and not torch.allclose(after, before, atol=1e-4)  # a new graph: the loop
        torch.testing.assert_close(after, model(ids, ids, reduction="none"), atol=1e-6, rtol=1e-6)
        model.phases = ()
        assert torch.equal(compiled(ids, ids, reduction="none"), before) and len(graphs) == 2  # both kept
    torch._dynamo.reset()


class _Loader:
    def __init__(self, h, ctx):
        self.generator = torch.Generator().manual_seed(3)

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        ids = torch.randint(0, 64, (2, seq_len + 1), generator=self.generator)
        return ids[:, :-1], ids[:, 1:]


def test_the_warmup_compiles_both_graphs_and_the_loop_switches_at_the_fraction(capsys):
    env = {**ENV, "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256", "ITERATIONS": "4", "WARMUP_STEPS": "1",
           "VAL_LOSS_EVERY": "0", "MAX_WALLCLOCK_SECONDS": "0", "TRAIN_LOG_EVERY": "0"}
    ns = load_program(("depth_recurrence",), env=env)
    ns["TrainLoader"] = _Loader
    h, ctx = ns["Hyperparameters"](), cpu_context(ns)
    compiles, at_step = [0], []

    def counting_backend(gm, example_inputs):
        compiles[0] += 1
        return gm.forward

    torch.manual_seed(0)
    run = ns["build_model"](h, ctx)
    assert run.phase_plan == [(0.5, "recurrence")]

    class GraphsAtStep(ns["RunEvents"]):
        def step(self, model, step, clock_ms, lr_mul):
            at_step.append((step, model.phases, compiles[0]))

    run.events.append(GraphsAtStep(run.base_model, h, ctx))
    torch._dynamo.reset()
    run.model = torch.compile(run.base_model, backend=counting_backend, fullgraph=True, dynamic=False)
    ns["prepare_training"](run)
    initial = {k: v.clone() for k, v in run.base_model.state_dict().items()}
    ns["compile_warmup"](run)
    assert compiles[0] == 2 and run.base_model.phases == ()  # the plain graph and the looped one
    assert all(torch.equal(v, initial[k]) for k, v in run.base_model.state_dict().items())
    ns["train"](run, torch.randint(0, 64, (200,), dtype=torch.int32))
    loop = ("recurrence",)
    assert at_step == [(1, (), 2), (2, (), 2), (3, loop, 2), (4, loop, 2)]  # switched at half; nothing compiled
    out = capsys.readouterr().out
    assert "warmup_phase:recurrence" in out and "phase:('recurrence',) step:2" in out
    assert "layer_loop:enabled encoder:[0, 1, 2] decoder:[1, 2, 3, 4]" in out
    torch._dynamo.reset()


@pytest.mark.parametrize(("env", "words"), [
    ({"LOOP_END": "5"}, "LOOP_START=1 LOOP_END=5: expected 0 <= LOOP_START <= LOOP_END < NUM_LAYERS=5"),
    ({"LOOP_SCHEDULE": "0,7,1"}, r"LOOP_SCHEDULE=0,7,1: \[7\] not a layer of NUM_LAYERS=5"),
])
def test_a_span_outside_the_model_is_one_line(env, words):
    ns = load_program(("depth_recurrence",), env={**ENV, **env})
    with pytest.raises(ns["RunInputError"], match=words):
        ns["GPT"](ns["Hyperparameters"]())


def test_no_loops_declares_no_phase():
    ns = load_program(("depth_recurrence",), env={**ENV, "NUM_LOOPS": "0"})
    assert ns["DepthRecurrenceEvents"].phases == {}
    assert ns["GPT"](ns["Hyperparameters"]()).stack.skip_weights.shape == (2, 16)


def test_the_contracts():
    env = {"NUM_LOOPS": "1", "LOOP_START": "1", "LOOP_END": "2"}
    assert check_contract("layer_schedule", "depth_recurrence", env=env) == []
    assert check_contract("run_events", "depth_recurrence", env=env) == []


def _loop_on(model):
    model.phases = ("recurrence",)


def test_the_adapting_eval_runs_the_loop():
    # two layers, layer 0 run twice: (0, 0, 1); the skip count stays 1, so the plain program loads the same weights
    check_adapting_eval_uses_plugin(("depth_recurrence",), env={"NUM_LOOPS": "1", "LOOP_START": "0", "LOOP_END": "0"},
                                    prepare=_loop_on)


@pytest.mark.slow
def test_an_emitted_program_loops_from_half_the_run_on_cpu(tmp_path, tiny_dataset):
    env = {"NUM_LAYERS": "3", "LOOP_START": "1", "LOOP_END": "1", "NUM_LOOPS": "1", "ENABLE_LOOPING_AT": "0.5"}
    run = run_emitted(("depth_recurrence",), tiny_dataset, tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "warmup_phase:recurrence" in run.stdout and "phase:('recurrence',) step:2" in run.stdout
    assert run.final_bpb is not None and run.final_bpb > 0
