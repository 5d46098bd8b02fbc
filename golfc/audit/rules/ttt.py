"""L1–L4: validation tokens reaching backward() / an optimizer step before their scores are committed.

Legal (score-first TTT): inside a loop over chunks, the chunk is scored under ``no_grad`` first, then the
model trains on it, and the chunk is never scored again. Illegal: training on validation tokens before
any score of them (L1), rescoring a chunk after an update on it (L2, multi-epoch TTT), training on
validation tokens before the artifact is quantized / serialized (L3, pre-quant TTT), and compile warmups
that run backward() on real validation tokens (L4).
"""

from __future__ import annotations

import ast

from golfc.audit.chunks import trains_ahead
from golfc.audit.dataflow import (
    BACKWARD,
    DEFERRED,
    RESCORED,
    SCORE_FIRST,
    TRAIN_FIRST,
    Event,
    FunctionFacts,
    Resolution,
    common_loops,
    fresh_each_iteration,
    quantizes_after,
)
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.rules.slot import is_slot_scope
from golfc.audit.vocabulary import WARMUP_WORDS, has_words, identifiers


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        slot_scope = is_slot_scope(facts.scope, context.program)
        for backward in facts.of_kind(BACKWARD):
            if backward.via is None and slot_scope:
                continue  # eval-time deltas are judged by the SLOT rules
            if backward.via is not None and is_slot_scope(backward.via, context.program):
                continue
            resolution = context.flow.resolve(facts, backward)
            if resolution.outcome == DEFERRED and not _has_callers(context, facts):
                # nobody passes it data: judged on its own (liveness turns the hit into a 'never called' note)
                resolution = Resolution(TRAIN_FIRST, backward)
            if resolution.outcome not in (SCORE_FIRST, DEFERRED):
                hits.append(_classify(context, facts, resolution))
            elif resolution.outcome == SCORE_FIRST and _trains_ahead(facts, resolution):
                hits.append(_ahead(context, facts, resolution))
            elif resolution.outcome == SCORE_FIRST and _trains_before_artifact(context, facts, resolution):
                hits.append(_classify(context, facts, Resolution(TRAIN_FIRST, backward)))
    return hits


def _trains_before_artifact(context: Context, facts: FunctionFacts, resolution: Resolution) -> bool:
    """The score before the step is a whole evaluation, not the chunk's own score (they share no loop), and
    the artifact is quantized/serialized after the step: a diagnostic eval followed by pre-quant TTT (#1487)."""
    score = resolution.score
    if score is None or common_loops(score, resolution.backward) or _in_warmup(facts, resolution.backward):
        return False
    return (quantizes_after(facts, resolution.backward.node) or _quantize_after_callers(context, facts)) is not None


def _trains_ahead(facts: FunctionFacts, resolution: Resolution) -> bool:
    """Score-first in order, but the step trains on a chunk past the one just scored (an index offset)."""
    score = resolution.score
    if score is None:
        return False
    shared = [loop for loop in common_loops(score, resolution.backward) if fresh_each_iteration(facts, loop, score)]
    return bool(shared) and trains_ahead(facts, resolution.backward, score, shared[-1])


def _ahead(context: Context, facts: FunctionFacts, resolution: Resolution) -> Hit:
    return Hit(
        "L1",
        Severity.FAIL,
        f"{function_label(facts)} scores a chunk at {context.where(resolution.score.node)} and then trains on "
        f"validation tokens past it{_trail(context, resolution.backward)}: the training window runs into a "
        "chunk not scored yet (an index offset such as chunks[i + 1]), so those tokens are trained on before "
        "their scores are committed",
        resolution.backward.node,
    )


def _has_callers(context: Context, facts: FunctionFacts) -> bool:
    return facts.name != "<module>" and bool(context.flow.call_sites(facts.name))


def _classify(context: Context, facts: FunctionFacts, resolution: Resolution) -> Hit:
    backward, score = resolution.backward, resolution.score
    trail = _trail(context, backward)
    if resolution.outcome == RESCORED and score is not None:
        return Hit(
            "L2",
            Severity.FAIL,
            f"{function_label(facts)} scores validation tokens at "
            f"{context.where(score.node)} after an optimizer update on the same tokens{trail} "
            "(multi-epoch / score-after-update TTT)",
            backward.node,
        )
    if _in_warmup(facts, backward) and _warmup_state_discarded(facts, backward):
        return Hit(
            "L4",
            Severity.WARN,
            f"a compile warmup in {function_label(facts)} runs backward()/step() on real validation "
            f"tokens{trail}, but only on an adapter and optimizer it builds for the warmup and discards, so no "
            "update reaches the scored model (the pattern PR #1530 was merged with after review); warming up on "
            "random or training tokens leaves no doubt",
            backward.node,
        )
    if _in_warmup(facts, backward):
        return Hit(
            "L4",
            Severity.FAIL,
            f"a warmup in {function_label(facts)} runs backward() on real validation "
            f"tokens{trail}; warm up on random or training tokens",
            backward.node,
        )
    quantize = quantizes_after(facts, backward.node) or _quantize_after_callers(context, facts)
    if quantize is not None:  # a score in between (a diagnostic eval) does not undo training before the artifact
        return Hit(
            "L3",
            Severity.FAIL,
            f"{function_label(facts)} trains on validation tokens{trail} before the "
            f"artifact is quantized/serialized at {context.where(quantize)} (pre-quant TTT)",
            backward.node,
        )
    later = f"; they are scored only later, at {context.where(score.node)}" if score is not None else ""
    return Hit(
        "L1",
        Severity.FAIL,
        f"validation tokens reach backward() in {function_label(facts)}{trail} before "
        f"their scores are committed{later}",
        backward.node,
    )


def _trail(context: Context, backward: Event) -> str:
    """`` (through `ttt_step`, backward at file:line)`` for a backward made by a callee."""
    if backward.via is None:
        return ""
    chain = [backward.via.name]
    inner = next((e for e in context.flow.facts_of(backward.via).of_kind(BACKWARD)), None)
    while inner is not None and inner.via is not None and inner.via.name not in chain:  # down to the real backward
        chain.append(inner.via.name)
        inner = next((e for e in context.flow.facts_of(inner.via).of_kind(BACKWARD)), None)
    where = f", backward at {context.where(inner.node)}" if inner is not None else ""
    return f" (through `{'` → `'.join(chain)}`{where})"


def _in_warmup(facts: FunctionFacts, backward: Event) -> bool:
    names = [facts.name] + ([backward.via.name] if backward.via is not None else [])
    for loop in backward.loops:
        if isinstance(loop, ast.For):
            names += identifiers(loop.target) + identifiers(loop.iter)
    return any(has_words(name, WARMUP_WORDS) for name in names)


def _quantize_after_callers(context: Context, facts: FunctionFacts) -> ast.Call | None:
    if facts.name == "<module>":
        return None
    for caller, site in context.flow.call_sites(facts.name):
        found = quantizes_after(caller, site)
        if found is not None:
            return found
    return None


def _warmup_state_discarded(facts: FunctionFacts, backward: Event) -> bool:
    """Every optimizer stepped in the warmup loop is built inside that loop over parameters of an object
    also built there (``wl = LoRA(...)``; ``wo = AdamW(wl.parameters())``): the warmup trains throwaway state."""
    if not backward.loops:
        return False
    loop = backward.loops[0]
    inside = range(loop.lineno, (loop.end_lineno or loop.lineno) + 1)
    steps = [
        node.func.value
        for node in ast.walk(loop)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "step"
        and isinstance(node.func.value, ast.Name)
    ]
    return bool(steps) and all(_built_inside(facts, step.id, inside, optimizer=True) for step in steps)


def _built_inside(facts: FunctionFacts, name: str, lines: range, optimizer: bool) -> bool:
    values = facts.definitions.get(name, [])
    if not values or not all(isinstance(v, ast.Call) and v.lineno in lines for v in values):
        return False
    if not optimizer:
        return True
    owners = {
        n.func.value.id
        for v in values
        for n in ast.walk(v)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in ("parameters", "named_parameters")
        and isinstance(n.func.value, ast.Name)
    }
    return bool(owners) and all(_built_inside(facts, owner, lines, optimizer=False) for owner in owners)
