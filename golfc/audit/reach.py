"""Which expressions can supply the value of a name, with names resolved through Python's scopes.

The unwrapper asks what reaches ``exec``: a decode call is a wrapper layer only when its value can flow into
the code argument. A name is resolved the way Python resolves it: a function's own names (parameters,
assignments, loop targets, imports, nested ``def`` …) are local to it unless declared ``global`` or
``nonlocal``; any other name comes from the nearest enclosing function that binds it, else from the module.
Class bodies are not visible to the functions inside them; a comprehension is a scope of its own whose first
iterable belongs to the enclosing scope. So ``blob`` in one function and ``blob`` in another are different
variables, and a module name read in a function that does not rebind it is the module's.

Within one scope the flow stays an over-approximation: every expression ever bound to a name may be its
value (order and branches are ignored), an assignment to ``G[k]`` or ``o.attr`` binds ``G`` / ``o``, a
function name takes its ``return`` values, and a parameter of a function called by its name takes the
arguments passed to it. Attributes are object state, not variables: they are tracked by attribute name
alone, in every scope at once (``self.code`` set in ``__init__`` is ``self.code`` read in ``run``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
Key = tuple[int, str]  # (id of the scope node that holds the variable, its name)
ATTRIBUTES = 0  # the pseudo-scope of attributes: ``x.code`` is keyed (ATTRIBUTES, "code") whatever ``x`` is


@dataclass(eq=False)
class Scope:
    node: ast.AST  # the Module, function, lambda, class or comprehension
    parent: Scope | None
    bound: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    @property
    def is_comprehension(self) -> bool:
        return isinstance(self.node, COMPREHENSIONS)


class Scopes:
    """The scope every node of a module is evaluated in, and the variable each ``Name`` refers to."""

    def __init__(self, tree: ast.Module) -> None:
        self.module = Scope(tree, None)
        self.scope_of: dict[int, Scope] = {}
        self.key_of: dict[int, Key] = {}  # id of a Name (or of a def) -> the variable it reads or binds
        names: list[tuple[ast.AST, str, Scope]] = []
        self._collect(tree, names)
        for node, name, scope in names:
            self.key_of[id(node)] = self.key(scope, name)

    def key(self, scope: Scope, name: str) -> Key:
        """The variable ``name`` means in ``scope``."""
        current = scope
        while current.parent is not None:
            if name in current.declared_global:
                break
            own = name in current.bound and name not in current.declared_nonlocal
            if own and (current is scope or not isinstance(current.node, ast.ClassDef)):
                return id(current.node), name
            current = current.parent
        return id(self.module.node), name

    def local_names(self) -> frozenset[int]:
        """ids of the names that refer to a function's (or class's, or comprehension's) variable, not the module's."""
        module = id(self.module.node)
        return frozenset(node for node, (scope, _) in self.key_of.items() if scope != module)

    def _collect(self, tree: ast.Module, names: list[tuple[ast.AST, str, Scope]]) -> None:
        """Assign every node its scope; record what each scope binds and every name to resolve afterwards."""
        pending: list[tuple[ast.AST, Scope]] = [(tree, self.module)]
        while pending:
            node, scope = pending.pop()
            self.scope_of[id(node)] = scope
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    scope.bound.add(node.id)
                names.append((node, node.id, scope))
                continue
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                owner = scope
                while owner.is_comprehension and owner.parent is not None:
                    owner = owner.parent  # ``(x := …)`` in a comprehension binds x in the enclosing scope
                owner.bound.add(node.target.id)
                names.append((node.target, node.target.id, owner))
                self.scope_of[id(node.target)] = owner
                pending.append((node.value, scope))
                continue
            self._bind_declarations(node, scope)
            if isinstance(node, (*FUNCTIONS, ast.ClassDef, *COMPREHENSIONS)):
                if not isinstance(node, (ast.Lambda, *COMPREHENSIONS)):
                    scope.bound.add(node.name)
                    names.append((node, node.name, scope))
                inner = Scope(node, scope)
                outer_children, inner_children = _split(node, inner)
                pending.extend((child, scope) for child in outer_children)
                pending.extend((child, inner) for child in inner_children)
                continue
            pending.extend((child, scope) for child in ast.iter_child_nodes(node))

    @staticmethod
    def _bind_declarations(node: ast.AST, scope: Scope) -> None:
        """Names bound by statements other than assignments, and ``global`` / ``nonlocal``."""
        if isinstance(node, ast.Global):
            scope.declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.declared_nonlocal.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            scope.bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bound.add(node.rest)


def _split(node: ast.AST, inner: Scope) -> tuple[list[ast.AST], list[ast.AST]]:
    """(children evaluated in the enclosing scope, children evaluated in the node's own scope).

    A function's decorators, defaults and annotations are evaluated where it is defined; its parameters are
    bound in its own scope. A comprehension's first iterable is evaluated in the enclosing scope.
    """
    if isinstance(node, FUNCTIONS):
        arguments = node.args
        parameters = [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *(arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None),
        ]
        inner.bound.update(arg.arg for arg in parameters)
        outer = [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
        outer += [arg.annotation for arg in parameters if arg.annotation is not None]
        if isinstance(node, ast.Lambda):
            return outer, [node.body]
        outer += [*node.decorator_list, *([node.returns] if node.returns is not None else [])]
        return outer, list(node.body)
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], list(node.body)
    first, *rest = node.generators  # type: ignore[attr-defined]
    elements = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]  # type: ignore[attr-defined]
    inner_children: list[ast.AST] = [*elements, first.target, *first.ifs]
    for generator in rest:
        inner_children += [generator.target, generator.iter, *generator.ifs]
    return [first.iter], inner_children


class ValueFlow:
    """Every expression whose value each variable of a module may take, and what can reach a given node."""

    def __init__(self, tree: ast.Module) -> None:
        self.scopes = Scopes(tree)
        self.bindings: dict[Key, list[ast.AST]] = {}
        functions: dict[Key, list[FunctionNode]] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(self.scopes.key_of[id(node)], []).append(node)
        for node in ast.walk(tree):
            self._bind(node, functions)

    def _bind(self, node: ast.AST, functions: dict[Key, list[FunctionNode]]) -> None:
        if isinstance(node, ast.Assign):
            self._bind_targets(node.targets, node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            self._bind_targets([node.target], node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            self._bind_targets([node.target], node.iter)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind_targets([item.optional_vars], item.context_expr)
        elif isinstance(node, ast.Return) and node.value is not None:
            scope = self.scopes.scope_of.get(id(node))
            if scope is not None and isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._bind_key(self.scopes.key_of.get(id(scope.node)), node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for function in functions.get(self.scopes.key_of.get(id(node.func)), ()):  # type: ignore[arg-type]
                self._bind_arguments(function, node)

    def _bind_targets(self, targets: list[ast.expr], value: ast.AST) -> None:
        for target in targets:
            for node in ast.walk(target):
                self._bind_key(self._key(node), value)

    def _key(self, node: ast.AST) -> Key | None:
        """The variable (or attribute) a Name or Attribute node reads or binds; None for other nodes."""
        if isinstance(node, ast.Name):
            return self.scopes.key_of.get(id(node))
        if isinstance(node, ast.Attribute):
            return ATTRIBUTES, node.attr
        return None

    def _bind_key(self, key: Key | None, value: ast.AST) -> None:
        if key is not None:  # None: no name or attribute, or one the scope pass skips (PEP 695 type parameters)
            self.bindings.setdefault(key, []).append(value)

    def _bind_arguments(self, function: FunctionNode, call: ast.Call) -> None:
        """A call of a function by its name: each parameter takes the argument passed for it."""
        parameters = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
        for name, argument in zip(parameters, call.args):
            if not isinstance(argument, ast.Starred):
                self._bind_key((id(function), name), argument)
        keyword_names = {*parameters, *(arg.arg for arg in function.args.kwonlyargs)}
        for keyword in call.keywords:
            if keyword.arg in keyword_names:
                self._bind_key((id(function), keyword.arg), keyword.value)

    def flows_into(self, root: ast.AST) -> set[int]:
        """ids of every node whose value can reach ``root``: its own subtree and, through names, their bindings."""
        reached: set[int] = set()
        seen: set[Key] = set()
        pending: list[ast.AST] = [root]
        while pending:
            for node in ast.walk(pending.pop()):
                reached.add(id(node))
                key = self._key(node)
                if key is not None and key not in seen:
                    seen.add(key)
                    pending.extend(self.bindings.get(key, ()))
        return reached
