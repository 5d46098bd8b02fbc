"""L18: a one-token mixer (SmearGate, bigram hash) without a BOS mask when attention is document-isolated.

With ``cu_seqlens`` / document masks, document N+1 is meant to see nothing of document N; an unmasked
previous-token mix carries N's last token into N+1's BOS position, whose logits score N+1's first token.
"""

from __future__ import annotations

import ast

from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, names_in
from golfc.audit.vocabulary import words

MIXER_WORDS = {"smear", "bigram"}
BOS_WORDS = {"bos", "boundary", "boundaries", "doc", "docs", "document", "documents", "seqlens", "seqlen"}


def check(context: Context) -> list[Hit]:
    isolation = _document_isolation(context)
    hits = []
    for node in context.program.all_nodes():
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)) or not words(node.name) & MIXER_WORDS:
            continue
        if any(words(name) & BOS_WORDS for name in names_in(node)):
            continue
        if isolation is not None:
            hits.append(
                Hit(
                    "L18",
                    Severity.FAIL,
                    f"`{node.name}` mixes the previous token without a BOS mask while "
                    f"attention is document-isolated ({context.where(isolation)}): the last token of one "
                    "document leaks into the next; multiply by (ids != BOS)",
                    node,
                    (isolation,),
                )
            )
        else:
            hits.append(
                Hit(
                    "L18",
                    Severity.INFO,
                    f"`{node.name}` mixes the previous token across documents (no BOS "
                    "mask); a leak only when attention is document-isolated",
                    node,
                )
            )
    return hits


def _document_isolation(context: Context) -> ast.AST | None:
    """A live use of varlen attention (cu_seqlens) or a document mask."""
    for node in context.program.all_nodes():
        label = (
            node.id
            if isinstance(node, ast.Name)
            else node.attr
            if isinstance(node, ast.Attribute)
            else node.arg
            if isinstance(node, ast.keyword)
            else None
        )
        if label is None:
            continue
        parts = words(label)
        isolated = "varlen" in parts or {"cu", "seqlens"} <= parts or (parts & {"doc", "document"} and "mask" in parts)
        if isolated and context.liveness.is_live(node):
            return node
    return None
