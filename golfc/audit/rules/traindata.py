"""L9: training data read at evaluation (an n-gram table pre-filled from the training shards at eval time).

The README forbids training-data access during evaluation unless those bits are paid for inside the 16 MB.
Evidence: a reference to the training shards (a ``fineweb_train`` path, or a ``train_files`` /
``train_pattern`` knob) in code that scores validation tokens — a function named for evaluation with
scoring events and no training step of its own — directly or in a helper it calls (FAIL); in any other
function after the artifact is loaded back, a WARN (GPTQ calibration there is judged by L19). Legal: a
table built from training data during training, inside the training function, and shipped in the artifact
(then L22 counts it and C2 still requires it to be normalized).
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import CALIBRATION, SCORE, FunctionFacts, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.calibration import ARTIFACT_LOADS
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import call_name, dotted, words

EVAL_WORDS = {"eval", "evaluate", "evaluation", "score", "scoring", "ngram", "cache", "mixer", "ttt", "sliding"}
DRIVER_WORDS = {"main", "train", "training", "run"}
TRAIN_KNOB_WORDS = ({"train", "files"}, {"train", "pattern"}, {"train", "shards"}, {"train", "glob"})


def check(context: Context) -> list[Hit]:
    hits = []
    everything = context.flow.all_facts()
    by_name = {facts.name: facts for facts in everything}
    readers = {facts.name: reference for facts in everything if (reference := _train_reference(facts))}
    flagged: set[int] = set()
    for facts in everything:
        if not _evaluates(facts) or _trains(facts, by_name):
            continue  # only code that scores validation tokens and trains nothing is evaluation
        reference = readers.get(facts.name) or _calls_reader(facts, readers, by_name)
        if reference is not None and id(reference) not in flagged:
            flagged.add(id(reference))
            hits.append(_hit(context, facts, reference))
    for facts in everything:
        loaded = _first_artifact_load(facts)
        reference = _train_reference(facts, after=loaded.lineno) if loaded is not None else None
        if reference is not None and id(reference) not in flagged:
            flagged.add(id(reference))
            where = f" after the artifact is loaded back at {context.where(loaded)}"
            hits.append(_hit(context, facts, reference, where, Severity.WARN))
    return hits


def _evaluates(facts: FunctionFacts) -> bool:
    """A function that scores validation tokens and is named for evaluation (``eval_val_ngram``), not the
    program's driver (``main``, ``train_and_eval``), which reads the training shards to train."""
    name = words(facts.name)
    return bool(facts.of_kind(SCORE)) and bool(name & EVAL_WORDS) and not name & DRIVER_WORDS


def _trains(facts: FunctionFacts, by_name: dict[str, FunctionFacts], depth: int = 1) -> bool:
    """A ``.backward()`` in the function or in a program function it calls."""
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Call) and call_name(node) == "backward":
            return True
        if depth > 0 and isinstance(node, ast.Call) and (callee := by_name.get(call_name(node) or "")) is not None:
            if callee is not facts and _trains(callee, by_name, depth - 1):
                return True
    return False


def _hit(
    context: Context, facts: FunctionFacts, reference: ast.AST, when: str = "", severity: Severity = Severity.FAIL
) -> Hit:
    return Hit(
        "L9",
        severity,
        f"{function_label(facts)} evaluates on validation tokens and reads the training shards "
        f"(`{ast.unparse(reference)[:50]}`){when}: no training-data access is allowed during evaluation unless "
        "those bits are paid for inside the 16 MB (PR #982 'Fort Knox', README)",
        reference,
    )


def is_train_source(node: ast.AST) -> bool:
    """``"./data/fineweb_train_*.bin"``, ``args.train_files``, ``TRAIN_PATTERN``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "fineweb_train" in node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = (dotted(node) or "").split(".")[-1]
        return any(group <= words(name) for group in TRAIN_KNOB_WORDS)
    return False


def _train_reference(facts: FunctionFacts, after: int | None = None) -> ast.AST | None:
    calibrating = {getattr(event.node, "lineno", -1) for event in facts.of_kind(CALIBRATION)}
    for node in own_nodes(facts.scope):
        line = getattr(node, "lineno", 0)
        if is_train_source(node) and line not in calibrating and (after is None or line > after):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                continue
            return node
    return None


def _calls_reader(
    facts: FunctionFacts, readers: dict[str, ast.AST], by_name: dict[str, FunctionFacts]
) -> ast.AST | None:
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Call) and (name := call_name(node)) in readers and name != facts.name:
            if not _trains(by_name[name], by_name):
                return readers[name]
    return None


def _first_artifact_load(facts: FunctionFacts) -> ast.Call | None:
    loads = [
        node
        for node in own_nodes(facts.scope)
        if isinstance(node, ast.Call)
        and call_name(node) in ARTIFACT_LOADS
        and call_name(node) != "load"  # torch.load / np.load of anything; the named loaders are the artifact's
    ]
    return min(loads, key=lambda n: n.lineno) if loads else None
