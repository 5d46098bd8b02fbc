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
from golfc.audit.rules.common import Context, Hit, derives, function_label
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
    return hits + _training_tables(context)


# -- tables filled from training batches and read when scoring validation tokens ---------------------------------
TRAIN_DATA_GROUPS = (*TRAIN_KNOB_WORDS, {"train", "loader"})
SAVING_WORDS = {"save", "serialize", "dump", "write", "compress", "pack", "export"}
LOADING_METHODS = {"deserialize", "load", "from_bytes", "from_state", "loads", "frombuffer"}
DERIVE_DEPTH = 6


def _is_train_data(name: str) -> bool:
    return any(group <= words(name.split(".")[-1]) for group in TRAIN_DATA_GROUPS) or "fineweb_train" in name


def _train_fed(facts: FunctionFacts, node: ast.AST) -> bool:
    if any(is_train_source(child) for child in ast.walk(node)):
        return True
    return derives(facts, node, _is_train_data, DERIVE_DEPTH)


def _training_tables(context: Context) -> list[Hit]:
    """A table object filled from training batches (``table.update(chunk)``, the chunk read from the training
    shards) and handed to a scorer of validation tokens. Legal only when the table is paid for inside the
    artifact and is a normalized distribution (README; @valerio-oai on PR #982): FAIL when the object handed to
    the scorer is the in-memory one and never saved into the artifact (#925's frozen oracle), or when it is
    loaded back from the artifact but its class looks probabilities up with the target in the key (#982)."""
    hits: list[Hit] = []
    for facts in context.flow.all_facts():
        filled = _filled_tables(context, facts)
        if not filled:
            continue
        classes = {cls: (name, node) for name, (cls, node) in filled.items() if cls is not None}
        for score in facts.of_kind(SCORE):
            if not isinstance(score.node, ast.Call):
                continue
            arguments = [*score.node.args, *(k.value for k in score.node.keywords)]
            for argument in arguments:
                for name, (_cls, fill) in filled.items():
                    if derives(facts, argument, lambda n, table=name: n == table, DERIVE_DEPTH) and not _saved(
                        facts, name
                    ):
                        hits.append(
                            Hit(
                                "L9",
                                Severity.FAIL,
                                f"{function_label(facts)} fills `{name}` from the training shards "
                                f"(`{ast.unparse(fill)[:50]}` at {context.where(fill)}) and hands it to the scorer "
                                f"of validation tokens at {context.where(score.node)} without saving it in the "
                                "artifact: a training-data table at evaluation must be paid for inside the 16 MB "
                                "(README; PR #982, #925)",
                                score.node,
                                anchors=(fill,),
                            )
                        )
                loaded = _loaded_instance_of(facts, argument, set(classes))
                if loaded is not None and _target_keyed_class(context, loaded):
                    name, fill = classes[loaded]
                    hits.append(
                        Hit(
                            "L9",
                            Severity.FAIL,
                            f"{function_label(facts)} scores validation tokens at {context.where(score.node)} with "
                            f"a `{loaded}` loaded from the artifact, a table filled from the training shards "
                            f"(`{ast.unparse(fill)[:50]}` at {context.where(fill)}) whose lookups put the target "
                            "token in the key: a training-set n-gram table is legal only inside the 16 MB and "
                            "normalized over the vocabulary (@valerio-oai on PR #982 'Fort Knox')",
                            score.node,
                            anchors=(fill,),
                        )
                    )
    return hits


FILLING_WORDS = {"update", "add", "fill", "prefill", "build", "ingest", "insert", "observe", "count", "batch"}


def _filled_tables(context: Context, facts: FunctionFacts) -> dict[str, tuple[str | None, ast.Call]]:
    """``name → (class it is an instance of, the filling call)`` for ``name.method(x)``, a method of the program,
    with ``x`` read from the training shards (loaders themselves excluded); an updating method is preferred."""
    filled: dict[str, tuple[str | None, ast.Call]] = {}
    calls = sorted(
        (n for n in own_nodes(facts.scope) if isinstance(n, ast.Call)),
        key=lambda n: (not words(call_name(n) or "") & FILLING_WORDS, n.lineno),
    )
    for node in calls:
        if not (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.args
            and node.func.attr in context.program.functions
        ):
            continue
        name = node.func.value.id
        if (
            name in filled
            or name not in facts.definitions  # a module (``torch.from_numpy``) or a parameter
            or _is_train_data(name)
            or words(name) & {"loader", "stream", "opt", "optimizer"}
        ):
            continue
        if any(_train_fed(facts, argument) for argument in node.args):
            filled[name] = (_class_of(facts, name), node)
    return filled


def _class_of(facts: FunctionFacts, name: str) -> str | None:
    for value in facts.definitions.get(name, []):
        for child in ast.walk(value):
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id[:1].isupper():
                return child.func.id
    return None


def _loaded_instance_of(facts: FunctionFacts, argument: ast.AST, classes: set[str]) -> str | None:
    """``Table.deserialize(blob)`` (or an alias of one): an instance of one of ``classes`` read back."""
    pending, seen = [argument], set()
    for _ in range(DERIVE_DEPTH):
        nexts = []
        for node in pending:
            for child in ast.walk(node):
                if (
                    isinstance(child, ast.Call)
                    and isinstance(child.func, ast.Attribute)
                    and isinstance(child.func.value, ast.Name)
                    and child.func.value.id in classes
                    and child.func.attr in LOADING_METHODS
                ):
                    return child.func.value.id
                if isinstance(child, ast.Name) and child.id not in seen:
                    seen.add(child.id)
                    nexts += facts.definitions.get(child.id, [])
        pending = nexts
    return None


def _saved(facts: FunctionFacts, name: str) -> bool:
    """``name`` (or what a method of it returns) goes into a value that a save/serialize call writes."""
    holders = {name}
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Assign) and any(isinstance(c, ast.Name) and c.id == name for c in ast.walk(node.value)):
            holders |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Call) and words(call_name(node) or "") & SAVING_WORDS:
            if any(isinstance(c, ast.Name) and c.id in holders for a in node.args for c in ast.walk(a)):
                return True
    return False


def _target_keyed_class(context: Context, cls: str) -> bool:
    """A method of class ``cls`` is flagged by L7 (a lookup with the target in its key)."""
    from golfc.audit.rules import ngram  # a rule module of the same package; imported here to keep rules flat

    return any(
        hit.rule == "L7"
        and any(isinstance(a, ast.ClassDef) and a.name == cls for a in context.program.ancestors(hit.node))
        for hit in ngram.check(context)
    )


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
