"""``check_contract(slot, plugin)``: does a plugin's run-time code keep its slot's contract (golfc/slots.py)?

The plugin is assembled into a program with the defaults (``golfc.testing.load_program``) under a tiny model
on the CPU, and the slot's bound implementation is called as the core calls it: shapes and dtypes of what it
returns, causality (a later token never changes an earlier position: attention kernels, embedding modules,
the whole model, scorers via ``prefix_violations``), exactly-once scoring of every validation target, exact
inverses (compressor, quantizer), the optimizer's groups and state round trip. Returns one line per problem
(empty: the contract holds). A slot without a check returns one line saying so; tests/test_contracts.py runs
this for every slot every catalogue plugin fills.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CHECK_ENV: dict[str, str] = {
    "DEVICE": "cpu", "VOCAB_SIZE": "64", "NUM_LAYERS": "4", "MODEL_DIM": "32", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
    "TRAIN_SEQ_LEN": "16", "TRAIN_BATCH_TOKENS": "256", "VAL_BATCH_SIZE": "256",
}
B, T, J = 2, 16, 9  # batch, sequence, the position from which a causality check redraws tokens


def _same(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.allclose(a.float(), b.float(), atol=1e-5, rtol=1e-5))


def _shape(what: str, got: Any, expected: tuple[int, ...], dtype: Any = None) -> list[str]:
    problems = [] if tuple(got.shape) == expected else [f"{what}: shape {tuple(got.shape)}, expected {expected}"]
    if dtype is not None and got.dtype != dtype:
        problems.append(f"{what}: dtype {got.dtype}, expected {dtype}")
    return problems


def _causal(what: str, fn: Callable[[Any], Any], ids: Any, vocab: int) -> list[str]:
    """fn(ids) -> (B, T, ...): redraw ids at and after J; every earlier position must keep its value."""
    import torch

    other = ids.clone()
    other[:, J:] = torch.randint(0, vocab, other[:, J:].shape, generator=torch.Generator().manual_seed(1))
    a, b = fn(ids), fn(other)
    return [] if _same(a[:, :J], b[:, :J]) else [f"{what}: a token at position >= {J} changed an earlier output"]


def _model(ns: dict[str, Any]) -> Any:
    from golfc.testing import mixing_model

    return mixing_model(ns)


def _check_model(ns: dict[str, Any], h: Any, phases: tuple[str, ...] = ()) -> list[str]:
    """Model slots: the whole GPT keeps its shapes and stays causal with the plugin in it (and the run phases
    ``phases`` switched on)."""
    import torch

    model = _model(ns)
    model.phases = phases
    ids = torch.randint(0, h.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    on = f" (phases {list(phases)})" if phases else ""
    with torch.no_grad():
        hidden = model.hidden(ids)
        problems = _shape(f"GPT.hidden{on}", hidden, (B, T, h.model_dim))
        problems += _shape(f"GPT.logits{on}", model.logits(hidden), (B, T, h.vocab_size))
        problems += _causal(f"GPT.hidden{on}", model.hidden, ids, h.vocab_size)
    return problems


def _check_kernel(ns: dict[str, Any], h: Any) -> list[str]:
    import torch

    D = h.model_dim // h.num_heads
    g = torch.Generator().manual_seed(0)
    q = torch.randn(B, h.num_heads, T, D, generator=g)
    k, v = (torch.randn(B, h.num_kv_heads, T, D, generator=g) for _ in range(2))
    problems = []
    for layer in range(h.num_layers):
        y = ns["attention_kernel"](q, k, v, h, layer)
        problems += _shape(f"attention_kernel layer {layer}", y, (B, h.num_heads, T, D), q.dtype)
        k2, v2 = k.clone(), v.clone()
        k2[:, :, J:], v2[:, :, J:] = torch.randn_like(k2[:, :, J:]), torch.randn_like(v2[:, :, J:])
        if not _same(y[:, :, :J], ns["attention_kernel"](q, k2, v2, h, layer)[:, :, :J]):
            problems.append(f"attention_kernel layer {layer}: keys/values at >= {J} changed earlier outputs")
    return problems + _check_model(ns, h)


def _check_embedding(ns: dict[str, Any], h: Any, name: str) -> list[str]:
    import torch

    problems = []
    ids = torch.randint(0, h.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    for cls in ns[name]:
        torch.manual_seed(0)
        module = cls(h)
        for p in module.parameters():  # zero-initialised parts would hide a position mix
            torch.nn.init.normal_(p, std=0.3)
        e = torch.randn(B, T, h.model_dim, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            problems += _shape(f"{cls.__name__}", module(ids, e), (B, T, h.model_dim), e.dtype)
            problems += _causal(cls.__name__, lambda i, m=module, e=e: m(i, e), ids, h.vocab_size)
    return problems + _check_model(ns, h)


def _check_schedule(ns: dict[str, Any], h: Any) -> list[str]:
    """Every schedule the run can take (no phase, each declared run phase, all of them): layer indices, and the
    whole model with those phases on."""
    names = sorted({name for cls in ns["RUN_EVENTS"] for name in dict(cls.phases)})
    problems: list[str] = []
    for phases in dict.fromkeys([(), *((name,) for name in names), tuple(names)]):
        order = ns["layer_schedule"](h, phases)
        bad = [i for i in order if not isinstance(i, int) or not 0 <= i < h.num_layers]
        if bad or not order:
            problems.append(f"layer_schedule(phases {list(phases)}): {list(order)} has entries outside "
                            f"0 .. {h.num_layers - 1}: {bad}")
        problems += _check_model(ns, h, phases)
    return problems


def _check_optimizer(ns: dict[str, Any], h: Any) -> list[str]:
    import torch

    from golfc.testing import cpu_context

    model = _model(ns)
    optimizers = ns["build_optimizers"](model, h, cpu_context(ns, vocab=h.vocab_size))
    problems = [f"param group without base_lr in {type(o).__name__}" for o in optimizers for g in o.param_groups
                if "base_lr" not in g]
    owned = [id(p) for o in optimizers for g in o.param_groups for p in g["params"]]
    if sorted(owned) != sorted(id(p) for p in model.parameters() if p.requires_grad) or len(set(owned)) != len(owned):
        problems.append("the optimizers do not own every trainable parameter exactly once")
    ids = torch.randint(0, h.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    model(ids, ids).backward()
    for o in optimizers:
        o.step()
        state = o.state_dict()
        o.load_state_dict(state)
        if set(state["state"]) != set(o.state_dict()["state"]):
            problems.append(f"{type(o).__name__}: state does not round-trip through state_dict()")
    return problems


def _check_quantizer(ns: dict[str, Any], h: Any) -> list[str]:
    import torch

    model = _model(ns)
    state = model.state_dict()
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    obj, stats = ns["quantize_model"](model, state, h, ctx, ns["Calibration"](model, h, ctx, 0.0))
    problems = [f"quantize_model stats lack {k}" for k in ("param_count", "payload_bytes", "baseline_tensor_bytes")
                if k not in stats]
    _, trip = _round_trip(ns, obj, state)
    return problems + trip + ([] if isinstance(ns["QUANT_LABEL"], str) else ["QUANT_LABEL is not a str"])


def _check_budget_fitter(ns: dict[str, Any], h: Any) -> list[str]:
    """budget_fitter, on the program's quantized tiny model with the budget set 10% under its compressed size:
    the fitted object is smaller than the one given, the one given is left as it was (the run keeps it), and the
    fitted one dequantizes to the original names, shapes and dtypes."""
    import torch

    model = _model(ns)
    state = model.state_dict()
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    obj, _ = ns["quantize_model"](model, state, h, ctx, ns["Calibration"](model, h, ctx, 0.0))
    serialized = ns["serialize_artifact"](obj)
    given = len(ns["compress_bytes"](serialized))
    ns["ARTIFACT_BUDGET_BYTES"] = budget = int(0.9 * given)  # the global the core and the fitters read
    fitted = ns["budget_fitter"](obj, lambda o: len(ns["compress_bytes"](ns["serialize_artifact"](o))), h)
    problems = [] if ns["serialize_artifact"](obj) == serialized else ["budget_fitter changed the object it was given"]
    got = len(ns["compress_bytes"](ns["serialize_artifact"](fitted)))
    if got >= given:
        problems.append(f"budget_fitter: {got} bytes, not below the {given} it was given (budget {budget})")
    return problems + _round_trip(ns, fitted, state)[1]


def _check_train_quantization(ns: dict[str, Any], h: Any) -> list[str]:
    """train_quantization: run at each point of a decaying schedule (lr_mul 1 -> 0), the hook changes no
    parameter (it may only change how the forward reads them), and the model keeps its shapes and stays causal."""
    import torch

    model = _model(ns)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    for step, lr_mul in enumerate((1.0, 0.5, 0.1, 0.0)):
        ns["train_quant_hook"](model, step, lr_mul, h)
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, params[k])]
    problems = [f"train_quant_hook changed parameters: {', '.join(changed[:3])}"] if changed else []
    ids = torch.randint(0, h.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        problems += _shape("GPT.logits after train_quant_hook", model.logits(model.hidden(ids)), (B, T, h.vocab_size))
        problems += _causal("GPT.hidden after train_quant_hook", model.hidden, ids, h.vocab_size)
    return problems


def _round_trip(ns: dict[str, Any], obj: Any, state: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """(the dequantized state dict, problems): quantize_model's object through torch.save / torch.load and
    dequantize_state_dict; the names, shapes and dtypes must come back as `state` has them (None: other names)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    back = ns["dequantize_state_dict"](torch.load(io.BytesIO(buf.getvalue()), map_location="cpu"))
    if set(back) != set(state):
        return None, ["dequantize_state_dict(quantize_model(model, sd, ...)) has other keys than sd"]
    return back, [f"{k}: {tuple(back[k].shape)} {back[k].dtype} came back for {tuple(v.shape)} {v.dtype}"
                  for k, v in state.items() if back[k].shape != v.shape or back[k].dtype != v.dtype]


class _RandomCalibration:
    """A calibration source of random token batches (the contract check has no training shards)."""

    def __init__(self, vocab: int):
        self.vocab, self.done = vocab, False

    def batches(self, count: int) -> Any:
        import torch

        generator = torch.Generator().manual_seed(1)
        for _ in range(count):
            yield torch.randint(0, self.vocab, (B, T), generator=generator)

    def finished(self) -> None:
        self.done = True


def _check_quant_stages(ns: dict[str, Any], h: Any) -> list[str]:
    """quant_stages, on the low-bit quantizer they act in: plan gives bits the engine stores (2-8, 16 or 32); clip
    gives None or a finite positive (rows,) clip; round gives None or int8 values of w's shape in [-qmax, qmax];
    the whole model then round-trips with the stages active (names, shapes, dtypes) within a relative error of
    0.5 per quantized matrix (garbage scales or values fail it)."""
    import torch

    model, problems = _model(ns), []
    h.quant_keep_float_numel = 0  # the tiny model's matrices are quantized, not kept in fp16 for their size
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    name = next(k for k, v in state.items() if v.ndim == 2 and ".attn." in k)
    w, qmax = state[name].float(), ns["lowbit_qmax"](6)
    obj, _ = ns["quantize_model"](model, state, h, ctx, _RandomCalibration(h.vocab_size))  # stages prepare here
    for stage in ns["QUANT_STAGES"]:
        label = type(stage).__name__
        bits = stage.plan(name, w, 6, h) if hasattr(stage, "plan") else 6
        if bits not in (*range(2, 9), 16, 32):
            problems.append(f"{label}.plan({name}) gave {bits!r} bits")
        clip = stage.clip(name, w, qmax, h) if hasattr(stage, "clip") else None
        good_clip = clip is None or (clip.shape == (w.size(0),) and bool((torch.isfinite(clip) & (clip > 0)).all()))
        if not good_clip:
            problems.append(f"{label}.clip({name}): expected finite positive ({w.size(0)},), got {tuple(clip.shape)}")
        scale = ns["lowbit_scale"](clip if clip is not None else w.abs().amax(dim=1), qmax)
        q = stage.round(name, w, scale, qmax, h) if hasattr(stage, "round") else None
        if q is not None and (q.dtype != torch.int8 or q.shape != w.shape or int(q.abs().max()) > qmax):
            problems.append(f"{label}.round({name}): expected int8 {tuple(w.shape)} in [-{qmax}, {qmax}]")
    back, trip = _round_trip(ns, obj, state)
    if trip:
        return [*problems, *trip][:6]
    for k in obj.get("q", {}):
        error = (back[k].float() - state[k].float()).norm() / state[k].float().norm().clamp(min=1e-12)
        if error > 0.5:
            problems.append(f"{k}: relative round-trip error {float(error):.3f} (> 0.5)")
    return problems[:6]


def _synthetic_shards(h: Any, folder: Path) -> None:
    """Two training shards of random ids below vocab - 1 and a validation shard of the id vocab - 1 only (a
    sentinel: any of it in a training-side batch is validation data read), set as h's train and val files."""
    import numpy as np

    from golfc.data.shards import shard_name, write_shard

    rng = np.random.default_rng(0)
    for i in range(2):
        write_shard(folder / shard_name("train", i), rng.integers(0, h.vocab_size - 1, 5_000 + 977 * i))
    write_shard(folder / shard_name("val", 0), np.full(4_000, h.vocab_size - 1))
    h.train_files, h.val_files = f"{folder}/fineweb_train_*.bin", f"{folder}/fineweb_val_*.bin"


def _check_calibration(ns: dict[str, Any], h: Any, count: int = 3) -> list[str]:
    """calibration_source, with synthetic shards present: at most `count` batches, each int64 (b, T) of token ids
    in [0, vocab), none holding the validation shard's id."""
    import tempfile

    from golfc.testing import cpu_context

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        _synthetic_shards(h, Path(tmp))
        batches = list(ns["calibration_source"](_model(ns), h, cpu_context(ns, vocab=h.vocab_size), count))
    if not 0 < len(batches) <= count:
        problems.append(f"{len(batches)} batches for count={count}")
    for i, x in enumerate(batches):
        if str(x.dtype) != "torch.int64" or x.ndim != 2:
            problems.append(f"batch {i}: {x.dtype} {tuple(x.shape)}, expected int64 (b, T)")
        elif bool((x < 0).any() or (x >= h.vocab_size).any()):
            problems.append(f"batch {i}: ids outside [0, {h.vocab_size})")
        elif bool((x == h.vocab_size - 1).float().mean() > 0.5):  # a sampler may draw the id now and then
            problems.append(f"batch {i}: mostly the validation shard's id: validation data read for calibration")
    return problems[:6]


def _check_loader(ns: dict[str, Any], h: Any, steps: int = 6) -> list[str]:
    """data_loader, on two synthetic training shards (token ids below vocab - 1) and a validation shard of the
    id vocab - 1 only: each rank's (x, y) are int64 with y = x shifted by one, the step's tokens add up to
    global_tokens over the ranks (the shape (global // (world * accum * seq_len), seq_len) unless the loader
    weights its ranks), and no validation token is ever a training input."""
    import tempfile

    from golfc.testing import cpu_context

    problems, sentinel, seq_len, accum, world = [], h.vocab_size - 1, T, 2, 2
    global_tokens = world * accum * seq_len * 3
    with tempfile.TemporaryDirectory() as tmp:
        _synthetic_shards(h, Path(tmp))
        loaders = [ns["TrainLoader"](h, cpu_context(ns, rank, world, h.vocab_size)) for rank in range(world)]
        for step in range(steps):
            tokens = 0.0
            for rank, loader in enumerate(loaders):
                x, y = loader.next_batch(global_tokens, seq_len, accum)
                where = f"step {step} rank {rank}"
                if str(x.dtype) != "torch.int64" or x.shape != y.shape:
                    problems.append(f"{where}: x {x.dtype} {tuple(x.shape)}, y {tuple(y.shape)}: expected int64 pairs")
                    continue
                if not bool((y[:, :-1] == x[:, 1:]).all()):
                    problems.append(f"{where}: y is not x shifted by one")
                if bool((x == sentinel).any() or (y == sentinel).any()):
                    problems.append(f"{where}: a validation token reached the training batch")
                weighted = getattr(loader, "loss_weight", None) is not None
                expected = (global_tokens // (world * accum * seq_len), seq_len)
                if not weighted and tuple(x.shape) != expected:
                    problems.append(f"{where}: x {tuple(x.shape)}, expected {expected}")
                tokens += x.numel()
            if abs(tokens - global_tokens / accum) > 0.5:
                problems.append(f"step {step}: the ranks took {tokens:.0f} tokens, expected {global_tokens // accum}")
    return problems[:6]


def _check_compressor(ns: dict[str, Any], h: Any) -> list[str]:
    raw = bytes(range(256)) * 64 + b"golfc" * 1000
    back = ns["decompress_bytes"](ns["compress_bytes"](raw))
    return ([] if back == raw else ["decompress_bytes(compress_bytes(raw)) != raw"]) + (
        [] if isinstance(ns["COMPRESS_LABEL"], str) else ["COMPRESS_LABEL is not a str"])


def _val_tokens(h: Any) -> Any:
    import torch

    return torch.randint(0, h.vocab_size, (6 * h.train_seq_len + 5,), dtype=torch.int32,
                         generator=torch.Generator().manual_seed(4))


def _check_windows(ns: dict[str, Any], h: Any) -> list[str]:
    from golfc.testing import cpu_context

    val = _val_tokens(h)
    plan = ns["eval_windows"](val, h, cpu_context(ns, vocab=h.vocab_size))
    scored = [t for start, first in plan.spans for t in range(first + 1, start + plan.window + 1)]
    expected = list(range(1, val.numel()))
    if sorted(scored) == expected:
        return []
    return [f"eval_windows: {len(scored)} targets scored, {len(set(scored))} distinct; "
            f"expected {len(expected)}, each once"]


def _ledger_problems(scores: Any, final: bool) -> list[str]:
    """The score ledger's own rules: both columns present, int64, one per position; an update behind a score was
    computed only from earlier targets (seen < position); a scorer that stepped an optimizer declares what from."""
    import torch

    what = f"score_validation(final={final})"
    n = scores.positions.numel()
    missing = [name for name in ("updates", "seen") if getattr(scores, name, None) is None]
    if missing:
        return [f"{what}: no ledger column {', '.join(missing)} (build its Scores with collect_scores)"]
    problems = _shape(f"{what}.updates", scores.updates, (n,), torch.int64)
    problems += _shape(f"{what}.seen", scores.seen, (n,), torch.int64)
    if problems or n == 0:
        return problems
    late = (scores.seen >= scores.positions).nonzero().flatten()
    if late.numel():
        i = int(late[0])
        problems.append(f"{what}: position {int(scores.positions[i])} was scored after an update computed from "
                        f"position {int(scores.seen[i])} (score-first needs seen < position)")
    stepped = int(scores.updates.max()) > 0
    if stepped and not final:
        problems.append(f"{what}: optimizer steps in an evaluation that must not adapt")
    elif stepped and not bool((scores.seen >= 0).any()):
        problems.append(f"{what}: the scorer took optimizer steps but declared no position they learned from "
                        "(pass seen= to span_scores or ledger_part)")
    return problems


def _check_scorer(ns: dict[str, Any], h: Any) -> list[str]:
    import torch

    from golfc.testing import cpu_context, prefix_violations

    model, ctx, val = _model(ns), cpu_context(ns, vocab=h.vocab_size), _val_tokens(h)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    problems = []
    for final in (False, True):
        scores = ns["ledger_scores"](model, val, h, ctx, final)  # score_validation, its optimizer steps counted
        if sorted(scores.positions.tolist()) != list(range(1, val.numel())):
            problems.append(f"score_validation(final={final}): not every target scored exactly once")
        problems += _shape(f"score_validation(final={final}).nll", scores.nll, (val.numel() - 1,), torch.float32)
        problems += _ledger_problems(scores, final)
        if any(not torch.equal(v, state[k]) for k, v in model.state_dict().items()):
            problems.append(f"score_validation(final={final}) left the model's weights changed")
            model.load_state_dict(state)
    return problems + prefix_violations(ns["score_validation"], model, val, h, ctx, j=2 * h.train_seq_len + 3)


def _check_lr_schedule(ns: dict[str, Any], h: Any) -> list[str]:
    from golfc.testing import cpu_context

    optimizers = ns["build_optimizers"](_model(ns), h, cpu_context(ns, vocab=h.vocab_size))
    problems = []
    for step, ms in ((0, 0.0), (5, 1000.0 * h.max_wallclock_seconds * 0.99), (h.iterations, 0.0)):
        first = ns["apply_schedule"](optimizers, step, ms, h)
        lrs = [g["lr"] for o in optimizers for g in o.param_groups]
        again = ns["apply_schedule"](optimizers, step, ms, h)
        lrs_again = [g["lr"] for o in optimizers for g in o.param_groups]
        if not isinstance(first, float) or first != again or lrs != lrs_again:
            problems.append(f"apply_schedule(step={step}, elapsed_ms={ms}): not one float and the same lrs every call")
    return problems


def _check_events(ns: dict[str, Any], h: Any) -> list[str]:
    from golfc.testing import cpu_context

    model, problems = _model(ns), []
    for cls in ns["RUN_EVENTS"]:
        events = cls(model, h, cpu_context(ns, vocab=h.vocab_size))
        problems += [f"{cls.__name__}: phase {name!r} at {f!r}, expected a fraction in [0, 1]"
                     for name, f in dict(events.phases).items() if not 0.0 <= float(f) <= 1.0]
        methods = ("train_start", "phase", "step", "before_export")
        missing = [m for m in methods if not callable(getattr(events, m, None))]
        problems += [f"{cls.__name__}: no method {m}" for m in missing]
    return problems


def _check_averaging(ns: dict[str, Any], h: Any, steps: int = 60) -> list[str]:
    """weight_averaging: apply(model) leaves names, shapes and dtypes as they were; an average of identical
    weights is those weights; an average of changing weights lies, element by element, between the smallest and
    the largest value the model held (the initial weights and every updated one: a convex combination)."""
    import torch

    problems = []
    for moving in (False, True):
        model = _model(ns)
        first = {k: v.detach().clone() for k, v in model.state_dict().items()}
        low, high = dict(first), dict(first)
        averager = ns["WeightAverager"](model, h)
        for step in range(1, steps + 1):
            if moving:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(torch.randn_like(p) * 0.01)
                for k, v in model.state_dict().items():
                    if v.is_floating_point():
                        low[k], high[k] = torch.minimum(low[k], v), torch.maximum(high[k], v)
            averager.update(model, step, max(0.0, 1.0 - step / steps))  # the lr multiplier warms down to 0
        averager.apply(model)
        after = model.state_dict()
        if set(after) != set(first):
            return [f"apply changed the state-dict names: {sorted(set(after) ^ set(first))[:3]}"]
        for k, v in after.items():
            if v.shape != first[k].shape or v.dtype != first[k].dtype:
                problems.append(f"{k}: {tuple(first[k].shape)} {first[k].dtype} -> {tuple(v.shape)} {v.dtype}")
            elif not moving and v.is_floating_point() and not torch.allclose(v, first[k], rtol=1e-5, atol=1e-6):
                problems.append(f"{k}: the average of unchanged weights is not those weights")
            elif moving and v.is_floating_point():
                slack = 1e-5 * (1 + high[k].abs())
                if bool(((v < low[k] - slack) | (v > high[k] + slack)).any()):
                    problems.append(f"{k}: the average leaves the range of the weights it averaged")
    return problems[:5]


def _check_loss(ns: dict[str, Any], h: Any) -> list[str]:
    """The loss slot: the cross-entropy of GPT.logits, mean and per token, with the same gradient."""
    import torch
    import torch.nn.functional as F

    model = _model(ns)
    ids = torch.randint(0, h.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    targets = torch.roll(ids, -1, dims=1)
    problems = []
    for reduction in ("mean", "none"):
        hidden = model.hidden(ids).detach().requires_grad_()
        ref_hidden = hidden.detach().clone().requires_grad_()
        got = ns["loss_from_hidden"](model, hidden, targets, reduction)
        ref = F.cross_entropy(model.logits(ref_hidden).float().flatten(0, 1), targets.flatten(), reduction=reduction)
        ref = ref.view_as(targets) if reduction == "none" else ref
        shape = _shape(f"loss_from_hidden ({reduction})", got, tuple(ref.shape), torch.float32)
        if shape or not _same(got, ref):
            problems += shape or [f"loss_from_hidden ({reduction}): sum {got.sum().item()!r}, expected "
                                  f"{ref.sum().item()!r}"]
            continue
        got.sum().backward()
        ref.sum().backward()
        if not _same(hidden.grad, ref_hidden.grad):
            problems.append(f"loss_from_hidden ({reduction}): its gradient differs from the cross-entropy's")
    return problems + _check_model(ns, h)


UNCHECKED: dict[str, str] = {  # slots check_contract cannot call alone on one CPU process, and where they are tested
    "grad_average": "needs several ranks: plugins/flat_allreduce/test_flat_allreduce.py runs two gloo ranks",
}

CHECKS: dict[str, Callable[[dict[str, Any], Any], list[str]]] = {
    "weight_averaging": _check_averaging,
    "quant_stages": _check_quant_stages,
    "data_loader": _check_loader,
    "calibration_source": _check_calibration,
    "schedule": _check_lr_schedule,
    "run_events": _check_events,
    "attention_kernel": _check_kernel,
    "position_encoding": _check_model,
    "qkv_pre_rope": _check_model,
    "value_hook": _check_model,
    "qk_transform": _check_model,
    "attention_post": _check_model,
    "mlp": _check_model,
    "embedding_pre_norm": lambda ns, h: _check_embedding(ns, h, "EMBEDDING_PRE_NORM"),
    "embedding_extras": lambda ns, h: _check_embedding(ns, h, "EMBEDDING_EXTRAS"),
    "block": _check_model,
    "block_norm": _check_model,
    "layer_schedule": _check_schedule,
    "skip_mixer": _check_model,
    "optimizer": _check_optimizer,
    "muon_transform": _check_optimizer,
    "weight_transform": _check_model,
    "loss": _check_loss,
    "quantizer": _check_quantizer,
    "compressor": _check_compressor,
    "eval_windows": _check_windows,
    "eval_adapter": _check_scorer,
    "budget_fitter": _check_budget_fitter,
    "train_quantization": _check_train_quantization,
}


def check_contract(slot: str, plugin: str | None = None, env: Mapping[str, str] | None = None,
                   plugins_dir: Path | None = None, companions: tuple[str, ...] = ()) -> list[str]:
    """Problems with ``plugin``'s implementation of ``slot`` (None: the default program's), checked on the CPU
    in a program of that plugin, the ``companions`` it needs (``qat`` acts on a low-bit quantizer) and the
    defaults under :data:`CHECK_ENV` plus ``env``; empty when it holds."""
    from golfc.slots import SLOTS_BY_NAME
    from golfc.testing import load_program

    if slot not in SLOTS_BY_NAME:
        return [f"no slot named {slot!r}"]
    if slot not in CHECKS:
        return [f"slot {slot!r}: not checked here ({UNCHECKED.get(slot, 'no check yet')})"]
    import torch

    plugins = ((plugin,) if plugin else ()) + tuple(companions)
    ns = load_program(plugins, env={**CHECK_ENV, **dict(env or {})}, plugins_dir=plugins_dir)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return CHECKS[slot](ns, ns["Hyperparameters"]())
