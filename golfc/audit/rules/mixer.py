"""L10: a scalar "expert" (the model's entropy) mixed in beside per-token probabilities of the gold token.

A context mixer (Hedge, CTW) must mix distributions over the vocabulary. Stacking the model's entropy as
one more expert next to the gold token's NLL under each real expert gives a number that is not a
probability of the token (PR #745, rejected by @valerio-oai). Evidence: a stack/cat/list of per-token
values in code that handles validation data, where at least one member is read at the target token and
another is named as an entropy and is not. Legal: the entropy choosing the mixing *weight*
(``alpha = f(entropy)``), which is known before the target.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import FunctionFacts, own_nodes
from golfc.audit.rules.common import Context, Hit, from_target, function_label, val_severity
from golfc.audit.vocabulary import call_name, words

ENTROPY_WORDS = {"entropy", "ent"}
STACKERS = {"stack", "cat", "column_stack", "hstack", "vstack"}


def check(context: Context) -> list[Hit]:
    hits = []
    for facts in context.flow.all_facts():
        if not facts.touches_val:
            continue
        for node in own_nodes(facts.scope):
            members = _members(node)
            if len(members) < 2:
                continue
            scalars = [m for m in members if _named_entropy(facts, m) and not from_target(facts, m)]
            gold = [m for m in members if m not in scalars and from_target(facts, m)]
            if scalars and gold:
                hits.append(
                    Hit(
                        "L10",
                        val_severity(facts),
                        f"{function_label(facts)} mixes `{ast.unparse(scalars[0])[:40]}`, an entropy, as an expert "
                        f"beside `{ast.unparse(gold[0])[:40]}`, read at the target token: a scalar is not a "
                        "distribution over the vocabulary, so the mixture is not one (Hedge mixer, PR #745)",
                        node,
                    )
                )
    return hits


def _members(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Call) and call_name(node) in STACKERS and node.args:
        first = node.args[0]
        return list(first.elts) if isinstance(first, (ast.List, ast.Tuple)) else []
    return []


def _named_entropy(facts: FunctionFacts, node: ast.expr) -> bool:
    """The member's own name says entropy (``entropy_nll``, ``ent``), not a call it makes (``cross_entropy``)."""
    if isinstance(node, ast.Name):
        return bool(words(node.id) & ENTROPY_WORDS)
    if isinstance(node, ast.Attribute):
        return bool(words(node.attr) & ENTROPY_WORDS)
    return False
