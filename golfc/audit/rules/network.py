"""NET: network or download calls. The README forbids network access during evaluation; elsewhere in the
script a download is suspicious (the artifact must be self-contained)."""

from __future__ import annotations

import ast

from golfc.audit.dataflow import SCORE, FunctionFacts, own_nodes
from golfc.audit.findings import NETWORK_RULE, Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import call_name, has_words

NETWORK_MODULES = {
    "requests",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "aiohttp",
    "socket",
    "huggingface_hub",
    "ftplib",
    "wget",
    "datasets",
    "smtplib",
    "paramiko",
}
NETWORK_CALLS = {
    "urlopen",
    "urlretrieve",
    "hf_hub_download",
    "snapshot_download",
    "load_dataset",
    "create_connection",
    "download_url_to_file",
    "load_state_dict_from_url",
    "HfApi",
    "HfFileSystem",
}
EVAL_WORDS = {"eval", "evaluate", "evaluation", "score", "scoring"}
SHELL_CALLS = {"system", "popen", "run", "call", "check_call", "check_output", "Popen", "getoutput"}
SHELL_WORDS = ("curl ", "wget ", "http://", "https://", "git clone", "pip install", "huggingface-cli", "scp ")


def check(context: Context) -> list[Hit]:
    hits = []
    imports = _network_imports(context)
    reached = _reached_during_evaluation(context)
    for facts in context.flow.all_facts():
        for node in own_nodes(facts.scope):
            if isinstance(node, ast.Call) and _is_network_call(node, imports):
                hits.append(_hit(facts, node, reached.get(id(facts.scope))))
    if not hits:
        for node, module in imports.values():
            hits.append(Hit(NETWORK_RULE, Severity.INFO, f"imports `{module}` but makes no network call", node))
    return hits


def _network_imports(context: Context) -> dict[str, tuple[ast.AST, str]]:
    """Local name → (import statement, module) for every network module imported."""
    found: dict[str, tuple[ast.AST, str]] = {}
    for node in context.program.all_nodes():
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in NETWORK_MODULES:
                    found[alias.asname or alias.name.split(".")[0]] = (node, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in NETWORK_MODULES:
            for alias in node.names:
                found[alias.asname or alias.name] = (node, f"{node.module}.{alias.name}")
    return found


def _is_network_call(node: ast.Call, imports: dict[str, tuple[ast.AST, str]]) -> bool:
    name = call_name(node)
    if name in NETWORK_CALLS:
        return True
    root = node.func
    while isinstance(root, ast.Attribute):
        root = root.value
    if isinstance(root, ast.Name) and root.id in imports and root is not node.func:
        return True
    if isinstance(node.func, ast.Name) and node.func.id in imports:
        return True
    if isinstance(node.func, ast.Attribute) and node.func.attr == "load" and "hub" in ast.unparse(node.func):
        return True
    if name in SHELL_CALLS:
        literals = " ".join(c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str))
        return any(word in literals for word in SHELL_WORDS)
    return False


def _evaluates(facts: FunctionFacts) -> bool:
    return facts.touches_val and has_words(facts.name, EVAL_WORDS)


def _evaluation_start(facts: FunctionFacts) -> int | None:
    """First line of the function that runs during evaluation: its first scoring event, or line 0 for an eval
    function that reads validation data; None when no part of it evaluates."""
    if _evaluates(facts):
        return 0
    return min((event.order[0] for event in facts.of_kind(SCORE)), default=None)


def _after_scoring(facts: FunctionFacts, line: int) -> bool:
    start = _evaluation_start(facts)
    return start is not None and start <= line


def _reached_during_evaluation(context: Context) -> dict[int, str]:
    """id(function) -> label of its caller, for every function called while validation data is evaluated.

    A function is reached when one that handles validation data calls it at a point that runs during
    evaluation (see ``_after_scoring``); everything a reached function calls is reached too.
    """
    reached: dict[int, str] = {}
    work: list[tuple[ast.AST, bool]] = [
        (facts.scope, False) for facts in context.flow.all_facts() if facts.events or facts.touches_val
    ]
    while work:
        scope, whole = work.pop()
        facts = context.flow.facts_of(scope)
        start = 0 if whole else _evaluation_start(facts)  # computed once per function, not per call
        if start is None:
            continue
        for node in own_nodes(scope):
            if not (isinstance(node, ast.Call) and node.lineno >= start):
                continue
            for callee in context.program.functions.get(call_name(node) or "", []):
                if id(callee) not in reached and callee is not scope:
                    reached[id(callee)] = function_label(facts)
                    work.append((callee, True))
    return reached


def _hit(facts: FunctionFacts, node: ast.Call, reached_from: str | None) -> Hit:
    text = ast.unparse(node.func)
    if _after_scoring(facts, node.lineno):
        return Hit(
            NETWORK_RULE,
            Severity.FAIL,
            f"network call `{text}` in the evaluation path "
            f"({function_label(facts)} scores validation data): no network access during evaluation",
            node,
        )
    if reached_from is not None:
        return Hit(
            NETWORK_RULE,
            Severity.FAIL,
            f"network call `{text}` in {function_label(facts)}, which {reached_from} calls during "
            "evaluation: no network access during evaluation",
            node,
        )
    return Hit(
        NETWORK_RULE,
        Severity.WARN,
        f"network call `{text}` in {function_label(facts)}: the artifact must be "
        "self-contained; allowed only for data preparation, never during evaluation",
        node,
    )
