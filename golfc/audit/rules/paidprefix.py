"""L21: validation data shipped inside the submission and read by the program (a "paid prefix").

The folder's data files (anything that is not code, a log, the README, submission.json, a tokenizer model or a
figure) are matched against the string constants of the program. A file the program names is FAIL when it is
validation data by its name (``val_prefix.xz``, ``fineweb_val_…``) or by its content (a token shard: the
fineweb header), or when the code that names it handles validation data; WARN when it is read elsewhere, since
a reviewer should see what it holds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from golfc.audit.dataflow import own_nodes
from golfc.audit.findings import Severity
from golfc.audit.rules.common import Context, Hit, function_label
from golfc.audit.vocabulary import VAL_WORDS, words


@dataclass(frozen=True)
class ShippedFile:
    """A data file of the submission folder: its name there, its size and whether it starts like a token shard."""

    name: str
    size: int
    token_shard: bool = False

    @property
    def named_val(self) -> bool:
        stem = self.name.rsplit("/", 1)[-1]
        return "fineweb_val" in stem or bool(words(stem.split(".")[0]) & VAL_WORDS)


def check(context: Context) -> list[Hit]:
    if not context.shipped_files:
        return []
    hits = []
    module_names, bound_constants = _module_string_names(context)
    for facts in context.flow.all_facts():
        for node in own_nodes(facts.scope):
            if id(node) in bound_constants:
                continue  # ``PREFIX = "val_prefix.xz"``: judged where PREFIX is read
            shipped = _named_file(context, node, module_names)
            if shipped is None:
                continue
            val_code = facts.touches_val and facts.name != "<module>"
            what = _what_it_is(shipped)
            if shipped.named_val or shipped.token_shard or val_code:
                where = f"read by {function_label(facts)}, which handles validation data" if val_code else "read"
                hits.append(
                    Hit(
                        "L21",
                        Severity.FAIL,
                        f"the folder ships `{shipped.name}` ({shipped.size:,} bytes{what}), {where}: validation "
                        "data carried in the submission is a paid prefix",
                        node,
                    )
                )
            else:
                hits.append(
                    Hit(
                        "L21",
                        Severity.WARN,
                        f"the folder ships the data file `{shipped.name}` ({shipped.size:,} bytes) and "
                        f"{function_label(facts)} reads it: check that it holds no validation tokens and that its "
                        "bytes are counted",
                        node,
                    )
                )
    return hits


def _what_it_is(shipped: ShippedFile) -> str:
    if shipped.token_shard:
        return ", a token shard"
    if shipped.named_val:
        return ", named as validation data"
    return ""


def _module_string_names(context: Context) -> tuple[dict[str, str], set[int]]:
    """Module-level ``PREFIX = "val_prefix.xz"``: names bound to a string constant, and those constants' ids."""
    names: dict[str, str] = {}
    constants: set[int] = set()
    for tree in context.program.trees:
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                if isinstance(statement.value.value, str):
                    for target in statement.targets:
                        if isinstance(target, ast.Name):
                            names[target.id] = statement.value.value
                            constants.add(id(statement.value))
    return names, constants


def _named_file(context: Context, node: ast.AST, module_names: dict[str, str]) -> ShippedFile | None:
    """The shipped file a string constant (or a module-level name bound to one) in ``node`` names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in module_names:
        text = module_names[node.id]
    else:
        return None
    for shipped in context.shipped_files:
        if text == shipped.name or text.endswith("/" + shipped.name) or text.endswith(shipped.name.rsplit("/", 1)[-1]):
            if len(text) >= 3:
                return shipped
    return None
