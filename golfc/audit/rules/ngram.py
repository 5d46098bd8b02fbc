"""L7 and L11: the realized target token inside n-gram / hash lookup keys, or gating a tilt or mixture.

A causal cache may *store* counts keyed by the target after scoring; what leaks is *looking up* a
probability with a key that contains the target (only the gold token's ratio is ever computed), or switching
an expert on properties of the token being predicted.
"""

from __future__ import annotations

import ast

from golfc.audit.dataflow import FunctionFacts, dotted, own_nodes
from golfc.audit.rules.common import (
    Context,
    Hit,
    derives,
    from_target,
    function_label,
    is_bpb_table,
    names_in,
    val_severity,
)
from golfc.audit.vocabulary import DISTRIBUTION_WORDS, LOSS_WORDS, call_name, words

LOOKUP_METHODS = {"get", "lookup", "index_select", "gather", "take"}
HASH_CONSTANT = 1000


def check(context: Context) -> list[Hit]:
    hits = []
    hashers = _hash_functions(context)
    keyed_returns = _positional_key_returns(context)
    for facts in context.flow.all_facts():
        updates = _updated_tables(facts)
        gated_lines: set[int] = set()
        ratios: list[Hit] = []
        positional = _positional_keys(facts, keyed_returns, hashers)
        for node in own_nodes(facts.scope):
            key = _lookup_key(node)
            if (
                key is not None
                and _table_of(node) not in updates
                and not is_bpb_table(_table_node(node))
                and (_keyed(facts, key, hashers) or _positional_lookup(facts, node, key, positional, hashers))
            ):
                hits.append(
                    Hit(
                        "L7",
                        val_severity(facts),
                        f"{function_label(facts)} looks up "
                        f"`{ast.unparse(node)[:60]}` with a key built from the target token: the gold token "
                        "must not enter n-gram / hash keys used for its own probability",
                        node,
                    )
                )
            ratio = _exact_ratio(facts, node)
            if ratio is not None and ratio[2]:
                hits.append(
                    Hit(
                        "L8",
                        val_severity(facts),
                        f"{function_label(facts)} normalizes the gold token's count in `{ratio[0]}`, a table with "
                        f"a column per candidate token, by `{ratio[1]}` from another table instead of the sum "
                        "of that row over the vocabulary: the 'normalized' n-gram does not sum to 1 (PR #972)",
                        node,
                    )
                )
            elif ratio is not None:
                ratios.append(
                    Hit(
                        "L7",
                        val_severity(facts),
                        f"{function_label(facts)} divides `{ratio[0]}`, a count looked up with the target token "
                        f"in its key, by `{ratio[1]}` from another table: a full/context ratio computed only for "
                        "the gold token is not a distribution over the vocabulary (the #779 shape, exact keys too)",
                        node,
                    )
                )
            member = _membership_gate(facts, node)
            if member is not None:
                hits.append(
                    Hit(
                        "L11",
                        val_severity(facts),
                        f"{function_label(facts)} branches on `{member}`, whether the realized target token is "
                        "in a cache: the probability every candidate gets must not depend on which token came",
                        node,
                    )
                )
            gate = _gate(facts, node)
            if gate is not None and getattr(node, "lineno", None) not in gated_lines:
                gated_lines.add(node.lineno)
                hits.append(
                    Hit(
                        "L11",
                        val_severity(facts),
                        f"{function_label(facts)} gates `{gate}` on a property of "
                        "the realized target token: every candidate's probability must be computed without it",
                        node,
                    )
                )
        keyed_lines = {getattr(hit.node, "lineno", None) for hit in hits if hit.rule == "L7"}
        hits += [hit for hit in ratios if hit.node.lineno not in keyed_lines]  # one L7 per hashed lookup
    return hits


def _hash_functions(context: Context) -> frozenset[str]:
    """Functions of the program that return a hash (``def ngram_key(a, b, tok): return (a * P) ^ tok``)."""
    return frozenset(
        function.name
        for function in context.program.function_nodes()
        if any(isinstance(n, ast.Return) and n.value is not None and _is_hashy(n.value) for n in ast.walk(function))
    )


def _is_hashy(node: ast.AST, hashers: frozenset[str] = frozenset()) -> bool:
    """A hash of tokens: xor / modulo / shift / multiply by a large constant / hash() / a hashing function."""
    for child in ast.walk(node):
        if isinstance(child, ast.BinOp) and isinstance(child.op, (ast.BitXor, ast.Mod, ast.LShift)):
            return True
        if (
            isinstance(child, ast.BinOp)
            and isinstance(child.op, ast.Mult)
            and any(
                isinstance(side, ast.Constant) and isinstance(side.value, int) and side.value >= HASH_CONSTANT
                for side in (child.left, child.right)
            )
        ):
            return True
        if isinstance(child, ast.Call) and ("hash" in (call_name(child) or "").lower() or call_name(child) in hashers):
            return True
    return False


def _keyed(facts: FunctionFacts, key: ast.AST, hashers: frozenset[str]) -> bool:
    """The target is hashed together with the context into one key, directly or through local assignments.

    Each component of a tuple key is judged on its own: ``table[ctx_hash, tgt]`` (a row per hashed context,
    a column per token) and ``logp[t, tgt]`` are normalized distributions read at the gold token, not leaks.
    """
    if isinstance(key, ast.Tuple):
        return any(_keyed(facts, element, hashers) for element in key.elts)
    row = _flattened_row(facts, key, hashers)
    if row is not None:  # table[row * V + tgt] is table[row, tgt] stored flat: judge the row alone
        return _keyed(facts, row, hashers)
    if not from_target(facts, key):
        return False
    if _is_hashy(key, hashers):
        return True
    return any(
        _flattened_row(facts, value, hashers) is None and _is_hashy(value, hashers) and from_target(facts, value)
        for name in names_in(key)
        for value in facts.definitions.get(name, [])
    )


def _flattened_row(facts: FunctionFacts, key: ast.AST, hashers: frozenset[str]) -> ast.AST | None:
    """The row of a row-major 2-D index ``row * C + tgt`` (either order), or None.

    The target is added bare, not multiplied, xor-ed or hashed, and the row does not come from the target:
    an injective flattening of ``table[row, tgt]`` that mixes nothing. A modulo around it folds pairs
    together, which is hashing again, so only the bare sum counts.
    """
    if not (isinstance(key, ast.BinOp) and isinstance(key.op, ast.Add)):
        return None
    for row, column in ((key.left, key.right), (key.right, key.left)):
        bare_target = (
            not isinstance(column, ast.BinOp) and from_target(facts, column) and not _is_hashy(column, hashers)
        )
        if bare_target and isinstance(row, ast.BinOp) and isinstance(row.op, ast.Mult) and not from_target(facts, row):
            return row
    return None


def _table_node(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.Subscript):
        return node.value
    return node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else node


def _lookup_key(node: ast.AST) -> ast.AST | None:
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return node.slice
    if isinstance(node, ast.Call) and call_name(node) in ("get", "lookup") and node.args:
        return node.args[0]
    return None


def _table_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript):
        return dotted(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return dotted(node.func.value)
    return None


def _updated_tables(facts: FunctionFacts) -> set[str]:
    """Tables written as ``t[k] = t[k] + 1`` / ``t[k] = t.get(k, 0) + 1``: reads there are updates, not scores."""
    updated: set[str] = set()
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript):
                    table = dotted(target.value)
                    if table is not None and any(_table_of(n) == table for n in ast.walk(node.value)):
                        updated.add(table)
    return updated


def _gate(facts: FunctionFacts, node: ast.AST) -> str | None:
    """A target-indexed property table combined with a distribution in one expression."""
    if isinstance(node, ast.BinOp):
        operands = [node.left, node.right]
    elif isinstance(node, ast.Call) and call_name(node) == "where" and len(node.args) == 3:
        operands = list(node.args)
    elif isinstance(node, ast.IfExp):
        operands = [node.test, node.body, node.orelse]
    else:
        return None
    gates = [op for op in operands if _is_target_property(facts, op)]
    distributions = [op for op in operands if op not in gates and _is_distribution(facts, op)]
    if not gates or not distributions:
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        if all(from_target(facts, op) for op in distributions):
            return None  # λ·p_model[gold] + (1-λ)·p_ngram[gold]: a mixture of gold probabilities; L7 judges the tables
    return ast.unparse(gates[0])[:50]


def _is_target_property(facts: FunctionFacts, node: ast.AST, depth: int = 2) -> bool:
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Subscript)
            and isinstance(child.ctx, ast.Load)
            and from_target(facts, child.slice)
            and not is_bpb_table(child.value)
            and not _is_distribution(facts, child.value, depth=0)
        ):
            return True
        if (
            isinstance(child, ast.Name)
            and depth > 0
            and any(_is_target_property(facts, value, depth - 1) for value in facts.definitions.get(child.id, []))
        ):
            return True
    return False


def _names_a_distribution(name: str) -> bool:
    return bool(words(name) & (DISTRIBUTION_WORDS | LOSS_WORDS))


def _is_distribution(facts: FunctionFacts, node: ast.AST, depth: int = 1) -> bool:
    return derives(facts, node, _names_a_distribution, depth=depth)


def _lookups(facts: FunctionFacts, node: ast.AST, depth: int = 1) -> list[ast.AST]:
    """Table reads in ``node`` or, one assignment back, in the local names it reads."""
    found = [n for n in ast.walk(node) if _lookup_key(n) is not None or _gathered(n) is not None]
    if depth > 0:
        for name in names_in(node):
            for value in facts.definitions.get(name, []):
                found += _lookups(facts, value, depth - 1)
    return found


def _count_reads(facts: FunctionFacts, node: ast.AST) -> list[ast.AST]:
    """Table reads that *are* the value (``max(c.get(k, 0), 1)``, or a local assigned one), not reads that
    only build a key (``ctx_hash = toks[t - 2] * P ^ ...``)."""
    found: list[ast.AST] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if _lookup_key(current) is not None:
            found.append(current)
        elif isinstance(current, ast.Call) and isinstance(current.func, ast.Name) and current.func.id in _WRAPPERS:
            stack.extend(current.args)
        elif isinstance(current, ast.BinOp) and isinstance(current.op, (ast.Add, ast.Sub)):
            stack.extend((current.left, current.right))
        elif isinstance(current, ast.Name):
            found += [v for v in facts.definitions.get(current.id, []) if _lookup_key(v) is not None]
    return found


_WRAPPERS = {"max", "min", "float", "int"}


def _gathered(node: ast.AST) -> ast.AST | None:
    """The index of ``counts.gather(dim, idx)``: one column per candidate, read at ``idx``."""
    if isinstance(node, ast.Call) and call_name(node) == "gather" and isinstance(node.func, ast.Attribute):
        return node.args[-1] if len(node.args) >= 2 else None
    return None


def _candidate_table(facts: FunctionFacts, node: ast.AST) -> bool:
    """A read of one column of a per-candidate table (``c.gather(-1, tgt)``, ``c[ctx, tgt]`` on an array),
    not a dict looked up with a tuple key (``full[(ctx, tgt)]``)."""
    if _gathered(node) is not None:
        return True
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple)):
        return False
    table = _table_of(node) or ""
    return not any(
        isinstance(v, (ast.Dict, ast.DictComp)) or (isinstance(v, ast.Call) and call_name(v) in ("dict", "defaultdict"))
        for v in facts.definitions.get(table, [])
    )


def _exact_ratio(facts: FunctionFacts, node: ast.AST) -> tuple[str, str, bool] | None:
    """``full.get((ctx, tgt)) / ctx_counts.get(ctx)``: a target-keyed count over a count of another table.

    Dividing by the same table's row (``t[ctx, tgt] / t[ctx].sum()``) normalizes over the vocabulary and is
    not this; neither is a byte table or a distribution read at the gold token."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)) or not facts.touches_val:
        return None
    numerators = [
        n
        for n in _lookups(facts, node.left)
        if from_target(facts, _lookup_key(n) if _lookup_key(n) is not None else _gathered(n))
        and not is_bpb_table(_table_node(n))
        and not _is_distribution(facts, _table_node(n), depth=0)
        and _table_of(n) is not None
    ]
    denominators = [n for n in _count_reads(facts, node.right) if not from_target(facts, _lookup_key(n))]
    for numerator in numerators:
        for denominator in denominators:
            if _table_of(denominator) not in (None, _table_of(numerator)):
                table = _table_of(numerator) or ""
                return table, ast.unparse(denominator)[:50], _candidate_table(facts, numerator)
    return None


def _membership_gate(facts: FunctionFacts, node: ast.AST) -> str | None:
    """``if (ctx, tgt) in cache:`` / ``p if tgt in recent else q`` choosing how the gold token is scored.

    A test whose branch only writes to that cache is an update after scoring, not a gate."""
    if not isinstance(node, (ast.If, ast.IfExp)) or not facts.touches_val:
        return None
    for test in ast.walk(node.test):
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.In, ast.NotIn))):
            continue
        table = dotted(test.comparators[0])
        if table is None or is_bpb_table(test.comparators[0]) or not from_target(facts, test.left):
            continue
        if isinstance(node, ast.If) and _branches_only_write(node, table):
            continue
        if not _filled_here(facts, table):
            continue  # a fixed set (special ids, selected names): not a cache of the tokens seen
        if not _chooses_a_probability(facts, node):
            continue  # ``if name in chosen: continue``: bookkeeping, not how a token is scored
        return ast.unparse(test)[:50]
    return None


def _branches_only_write(node: ast.If, table: str) -> bool:
    for child in ast.walk(node):
        targets = child.targets if isinstance(child, ast.Assign) else [getattr(child, "target", None)]
        if isinstance(child, (ast.Assign, ast.AugAssign)) and any(
            isinstance(t, ast.Subscript) and dotted(t.value) == table for t in targets
        ):
            return True
    return False


FILLING_METHODS = {"add", "append", "update", "setdefault", "extend", "insert", "appendleft"}


def _filled_here(facts: FunctionFacts, table: str) -> bool:
    """The function adds to ``table`` as it goes (``recent.add(tgt)``, ``seen[prev] = row``): a cache."""
    for node in own_nodes(facts.scope):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FILLING_METHODS
            and dotted(node.func.value) == table
        ):
            return True
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Subscript) and dotted(t.value) == table for t in targets):
                return True
    return False


def _chooses_a_probability(facts: FunctionFacts, node: ast.If | ast.IfExp) -> bool:
    """A branch of the test computes a probability or loss (``p = 0.7 * p_model + 0.3 if tgt in c else ...``)."""
    branches = [node.body, node.orelse] if isinstance(node, ast.IfExp) else [*node.body, *node.orelse]
    if isinstance(node, ast.If):
        branches += [t for stmt in node.body + node.orelse if isinstance(stmt, ast.Assign) for t in stmt.targets]
    return any(_is_distribution(facts, branch) for branch in branches)


# -- the target named by its position: ``tokens[pos]`` beside a context of ``tokens[pos - k]`` (#797, #776) --------
POSITIONAL_DEPTH = 4


def _shifted_pairs(scope: ast.AST) -> set[tuple[str, str]]:
    """``(array, index)`` pairs read both as ``array[index - k]`` (the context) in ``scope``."""
    pairs: set[tuple[str, str]] = set()
    for node in own_nodes(scope):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.BinOp) and isinstance(node.slice.op, ast.Sub):
            array, index = dotted(node.value), dotted(node.slice.left)
            if array is not None and index is not None:
                pairs.add((array, index))
    return pairs


def _at_position(node: ast.AST, pairs: set[tuple[str, str]]) -> bool:
    """``node`` reads ``array[index]`` for a pair whose ``array[index - k]`` is the context: the token at the
    predicted position itself, i.e. the target."""
    return any(
        isinstance(child, ast.Subscript) and (dotted(child.value), dotted(child.slice)) in pairs
        for child in ast.walk(node)
    )


def _holds_position(facts: FunctionFacts, node: ast.AST, pairs: set[tuple[str, str]], names: set[str]) -> bool:
    if _at_position(node, pairs) or any(name in names for name in names_in(node)):
        return True
    return derives(
        facts,
        node,
        lambda name: name in names or any(_at_position(v, pairs) for v in facts.definitions.get(name, [])),
        POSITIONAL_DEPTH,
    )


def _positional_key_returns(context: Context) -> dict[str, set[int]]:
    """Hashing helpers whose returned key (by position in a returned tuple) mixes the token at the position
    with the tokens before it: ``return ctx_idx, (h ^ tokens[pos] * P) & mask`` → ``{name: {1}}``."""
    found: dict[str, set[int]] = {}
    for facts in context.flow.all_facts():
        pairs = _shifted_pairs(facts.scope)
        if not pairs or facts.name == "<module>":
            continue
        for node in own_nodes(facts.scope):
            if not isinstance(node, ast.Return) or node.value is None:
                continue
            elements = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for index, element in enumerate(elements):
                if _holds_position(facts, element, pairs, set()) and _hashed(facts, element):
                    found.setdefault(facts.name, set()).add(index)
    return found


def _hashed(facts: FunctionFacts, node: ast.AST) -> bool:
    return _is_hashy(node) or any(_is_hashy(v) for name in names_in(node) for v in facts.definitions.get(name, []))


def _positional_keys(
    facts: FunctionFacts, keyed_returns: dict[str, set[int]], hashers: frozenset[str]
) -> tuple[set[tuple[str, str]], set[str]]:
    """The function's shifted pairs, and the names bound to target-keyed results of hashing helpers."""
    names: set[str] = set()
    for node in own_nodes(facts.scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            indices = keyed_returns.get(call_name(node.value) or "", set())
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                for index, element in enumerate(elements):
                    if (index in indices or (len(elements) == 1 and indices)) and isinstance(element, ast.Name):
                        names.add(element.id)
    return _shifted_pairs(facts.scope), names


def _positional_lookup(
    facts: FunctionFacts,
    node: ast.AST,
    key: ast.AST,
    positional: tuple[set[tuple[str, str]], set[str]],
    hashers: frozenset[str],
) -> bool:
    """A hashed key holding the token at the predicted position, read beside a context-only hashed lookup of
    another table in the same function: the #779 full/context pair with the target named by its index."""
    pairs, names = positional
    if not (pairs or names) or isinstance(key, ast.Tuple):
        return False
    if not _holds_position(facts, key, pairs, names):
        return False
    if not (any(name in names for name in names_in(key)) or _hashed(facts, key) or _is_hashy(key, hashers)):
        return False
    table = _table_text(node)
    for other in own_nodes(facts.scope):
        other_key = _lookup_key(other)
        if (
            other_key is not None
            and other is not node
            and _table_text(other) != table
            and not isinstance(other_key, ast.Tuple)
            and _hashed(facts, other_key)
            and not _holds_position(facts, other_key, pairs, names)
        ):
            return True
    return False


def _table_text(node: ast.AST) -> str:
    """``ngram_ctx[n]`` for ``ngram_ctx[n][ck]``: the table a lookup reads, as written."""
    return ast.unparse(_table_node(node))
