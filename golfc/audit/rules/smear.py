"""L18: a one-token mixer (SmearGate, bigram hash) without a BOS mask when attention is document-isolated.

With ``cu_seqlens`` / document masks, document N+1 is meant to see nothing of document N; an unmasked
previous-token mix carries N's last token into N+1's BOS position, whose logits score N+1's first token.
"""

from __future__ import annotations

import ast

from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, names_in
from golfc.audit.vocabulary import call_name, words

MIXER_WORDS = {"smear", "bigram"}
BOS_WORDS = {"bos", "boundary", "boundaries", "doc", "docs", "document", "documents", "seqlens", "seqlen"}


def check(context: Context) -> list[Hit]:
    isolation = _document_isolation(context)
    hits = []
    named = [
        node
        for node in context.program.all_nodes()
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and words(node.name) & MIXER_WORDS
    ]
    covered = {id(child) for node in named for child in ast.walk(node)}
    inline = [mix for mix in _inline_mixes(context) if id(mix) not in covered]
    for node in [*named, *inline]:
        if _applies_bos_mask(_mask_scope(context, node)):
            continue
        if isolation is not None:
            # An inline mix is a WARN: the organizers merged records with exactly this shape before the #1797
            # ruling (2026-04-16_SmearGate_AttentionOutputGate_ScoreFirstTTT), so it is not a FAIL by itself.
            inline_mix = not isinstance(node, (ast.ClassDef, ast.FunctionDef))
            hits.append(
                Hit(
                    "L18",
                    Severity.WARN if inline_mix else Severity.FAIL,
                    f"`{_label(node)}` mixes the previous token without a BOS mask while "
                    f"attention is document-isolated ({context.where(isolation)}): the last token of one "
                    "document leaks into the next; multiply by (ids != BOS)"
                    + (
                        " (@cocohearts on PR #1797; earlier merged records have the same inline shape)"
                        if inline_mix
                        else ""
                    ),
                    node,
                    (isolation,),
                )
            )
        else:
            hits.append(
                Hit(
                    "L18",
                    Severity.INFO,
                    f"`{_label(node)}` mixes the previous token across documents (no BOS "
                    "mask); a leak only when attention is document-isolated",
                    node,
                )
            )
    return hits


def _label(node: ast.AST) -> str:
    return node.name if isinstance(node, (ast.ClassDef, ast.FunctionDef)) else ast.unparse(node)[:60]


def _inline_mixes(context: Context) -> list[ast.AST]:
    """A previous-token mix written inline (``x[:, 1:] + g * x[:, :-1]``): one tensor's positions 1: plus a
    term reading the same tensor at :-1, the SmearGate shape inside a model's forward (#1797)."""
    found = []
    for node in context.program.all_nodes():
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for here, before in ((node.left, node.right), (node.right, node.left)):
                base = _sliced(here, "1:")
                if base is not None and any(_sliced(sub, ":-1") == base for sub in ast.walk(before)):
                    found.append(node)
                    break
    return found


def _sliced(node: ast.AST, wanted: str) -> str | None:
    """``x[:, 1:]`` → "x" when the last index is ``wanted``."""
    if not isinstance(node, ast.Subscript):
        return None
    index = node.slice.elts[-1] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
    if not isinstance(index, ast.Slice) or ast.unparse(index) != wanted:
        return None
    return ast.unparse(node.value)


def _mask_scope(context: Context, node: ast.AST) -> ast.AST:
    """Where a mask of the mix would be: the class or function named for it, or, for an inline mix, the
    innermost ``if`` block or function around it."""
    if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        return node
    for ancestor in context.program.ancestors(node):
        if isinstance(ancestor, (ast.If, ast.FunctionDef, ast.AsyncFunctionDef)):
            return ancestor
    return node


MASK_CALLS = {"eq", "ne", "where", "masked_fill", "masked_fill_", "index_fill", "index_fill_", "masked_scatter"}


def _applies_bos_mask(mixer: ast.AST) -> bool:
    """The mixer uses a BOS/document marker to mask: compares with it (``ids != BOS_ID``), passes it to a
    masking call (``masked_fill``, ``where``, ``eq``/``ne``), writes through it (``prev[bos_pos] = 0``) or
    multiplies by it (``prev * bos_mask``). A marker that is only stored, taken as a parameter or logged
    masks nothing."""
    for node in ast.walk(mixer):
        if isinstance(node, ast.Compare) and _mentions_bos(node):
            return True
        if isinstance(node, ast.Call) and call_name(node) in MASK_CALLS and _mentions_bos(node):
            return True
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Subscript) and _mentions_bos(t.slice) for t in targets):
                return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            if _mentions_bos(node.left) or _mentions_bos(node.right):
                return True
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Mult) and _mentions_bos(node.value):
            return True
    return False


def _mentions_bos(node: ast.AST) -> bool:
    return any(words(name) & BOS_WORDS for name in names_in(node))


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
