"""L19: GPTQ / Hessian calibration on validation data, or during evaluation.

Legal: calibration on training batches inside the training budget, or on tokens the model generates
itself (AR self-generated calibration).
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import CALIBRATION, FunctionFacts, own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import CALIBRATION_WORDS, call_name, has_words, is_val_string, words

ARTIFACT_LOADS = {
    "load",
    "deserialize",
    "dequantize",
    "decompress",
    "dequantize_state_dict",
    "decompress_bytes",
    "load_artifact",
}


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        for event in facts.of_kind(CALIBRATION):
            name = call_name(event.node) if isinstance(event.node, ast.Call) else "calibration"
            if event.val_data:
                hits.append(
                    Hit(
                        "L19",
                        Severity.FAIL,
                        f"`{name}` calibrates on validation data in "
                        f"{function_label(facts)}: GPTQ/Hessian calibration must use training (or "
                        "self-generated) tokens within the training budget",
                        event.node,
                    )
                )
                continue
            loaded = _artifact_loaded_before(facts, event.node)
            if loaded is not None:
                hits.append(
                    Hit(
                        "L19",
                        Severity.WARN,
                        f"`{name}` calibrates after the artifact is loaded back at "
                        f"{context.where(loaded)}, i.e. during evaluation",
                        event.node,
                    )
                )
        if has_words(facts.name, CALIBRATION_WORDS) and context.flow.intrinsic[id(facts.scope)].touches_val:
            hits.append(
                Hit(
                    "L19",
                    Severity.FAIL,
                    f"calibration function {function_label(facts)} reads validation data",
                    facts.scope,
                )
            )
    return hits


def _artifact_loaded_before(facts: FunctionFacts, node: ast.AST) -> ast.Call | None:
    line = getattr(node, "lineno", 0)
    for candidate in own_nodes(facts.scope):
        if (
            isinstance(candidate, ast.Call)
            and candidate.lineno < line
            and call_name(candidate) in ARTIFACT_LOADS
            and not any(is_val_string(arg) for arg in candidate.args)  # torch.load("fineweb_val_…") loads data
        ):
            return candidate
    return None


TRAIN_DATA_WORDS = ({"train", "files"}, {"train", "pattern"}, {"train", "shards"}, {"train", "loader"})


def train_calibrations(context: Context) -> list[tuple[str, ast.AST]]:
    """Live calibration calls fed from the training shards (``collect_hessians(model, loader)`` after
    ``loader = TokenLoader(args.train_files)``): whether they run inside the training clock is for the logs to
    say (:func:`golfc.audit.crosscheck.check_calibration_clock`)."""
    found = []
    for facts in context.flow.all_facts():
        for event in facts.of_kind(CALIBRATION):
            if event.val_data or not context.liveness.is_live(event.node):
                continue
            if any(any(group <= words(root.split(".")[-1]) for group in TRAIN_DATA_WORDS) for root in event.roots):
                name = call_name(event.node) if isinstance(event.node, ast.Call) else "calibration"
                found.append((name or "calibration", event.node))
    return sorted(found, key=lambda item: not has_words(item[0], CALIBRATION_WORDS))  # named calibrators first
