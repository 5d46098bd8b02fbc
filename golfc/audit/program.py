"""The unwrapped program as one module, with reachability under the effective configuration.

All source units execute in one shared namespace (golfc sections do), so functions are indexed by name
across units. A statement is *live* when its function can be called from live code and no enclosing branch
is switched off: ``if`` tests the effective configuration decides, code after ``return``/``raise``, and
functions or methods that live code never names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from golfc.audit.config import EffectiveConfig, Evaluator
from golfc.audit.parsing import inline_constant_aliases, parse_python
from golfc.audit.unwrap import SourceUnit

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
ALWAYS_LIVE_METHODS = {
    "forward",
    "__call__",
    "__init__",
    "__enter__",
    "__exit__",
    "__iter__",
    "__next__",
    "__getitem__",
    "__len__",
    "__post_init__",
    "backward",
    "step",
    "zero_grad",
}


@dataclass
class Program:
    """Parsed units, parent links and a by-name index of every function definition."""

    units: list[tuple[SourceUnit, ast.Module]]
    parents: dict[int, ast.AST] = field(default_factory=dict)
    unit_of: dict[int, str] = field(default_factory=dict)
    functions: dict[str, list[FunctionNode]] = field(default_factory=dict)
    _all_nodes: list[ast.AST] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, units: list[SourceUnit]) -> Program:
        parsed = []
        for unit in units:
            try:
                tree = parse_python(unit.text, unit.label).tree
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # reported by the unwrapper
            inline_constant_aliases(tree)
            parsed.append((unit, tree))
        program = cls(parsed)
        program._all_nodes = []
        for unit, tree in parsed:
            for node in ast.walk(tree):
                program._all_nodes.append(node)
                program.unit_of[id(node)] = unit.label
                for child in ast.iter_child_nodes(node):
                    program.parents[id(child)] = node
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    program.functions.setdefault(node.name, []).append(node)
        program._index_aliases()
        return program

    def _index_aliases(self) -> None:
        """``score_validation = score_plain_windows`` (golfc's wiring): calls by the alias reach the function."""
        for _, tree in self.units:
            for statement in tree.body:
                if (
                    isinstance(statement, ast.Assign)
                    and isinstance(statement.value, ast.Name)
                    and statement.value.id in self.functions
                ):
                    for target in statement.targets:
                        if isinstance(target, ast.Name) and target.id not in self.functions:
                            self.functions[target.id] = list(self.functions[statement.value.id])

    def function_nodes(self) -> list[FunctionNode]:
        """Every definition once (aliases share their target's node)."""
        unique: dict[int, FunctionNode] = {}
        for defs in self.functions.values():
            for node in defs:
                unique.setdefault(id(node), node)
        return list(unique.values())

    @property
    def trees(self) -> list[ast.Module]:
        return [tree for _, tree in self.units]

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        current = self.parents.get(id(node))
        while current is not None:
            yield current
            current = self.parents.get(id(current))

    def enclosing_function(self, node: ast.AST) -> FunctionNode | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return ancestor
        return None

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        parent = self.parents.get(id(node))
        return parent if isinstance(parent, ast.ClassDef) else None

    def location(self, node: ast.AST) -> tuple[str | None, int | None]:
        return self.unit_of.get(id(node)), getattr(node, "lineno", None)

    def all_nodes(self) -> Iterator[ast.AST]:
        """Every node of every unit (listed once: the liveness fixpoint and several rules walk them all)."""
        if self._all_nodes is None:
            self._all_nodes = [node for _, tree in self.units for node in ast.walk(tree)]
        return iter(self._all_nodes)


class Liveness:
    """Which statements and functions the effective configuration can reach, and why the others cannot."""

    def __init__(self, program: Program, config: EffectiveConfig, logged: str = "") -> None:
        self.program = program
        self.config = config
        # what the submission's logs printed: a branch whose own unique log line is in them ran, whatever the
        # defaults say (a run launched with TTT_ENABLED=1 that the README does not spell out)
        self.evidence = LogEvidence(program, logged)
        self.evaluator = Evaluator({}, config)
        self.dead_statements: dict[int, str] = {}
        self.live_functions: set[int] = set()
        self.live_classes: set[int] = set()
        self.referenced: set[str] = set()
        self.dead_references: dict[str, str] = {}  # name → why the only code naming it is dead
        self._solve()

    # -- queries ------------------------------------------------------------------------------------
    def is_live(self, node: ast.AST) -> bool:
        return self.why_dead(node) is None

    def why_dead(self, node: ast.AST) -> str | None:
        """None when ``node`` is live; otherwise a short reason."""
        chain = [node, *self.program.ancestors(node)]
        for current in chain:
            reason = self.dead_statements.get(id(current))
            if reason is not None:
                return reason
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)) and id(current) not in self.live_functions:
                if current.name in self.dead_references:
                    return f"`{current.name}` is only called {self.dead_references[current.name]}"
                return f"`{current.name}` is never called in live code"
            if isinstance(current, ast.ClassDef) and id(current) not in self.live_classes:
                return f"class `{current.name}` is never used in live code"
        return None

    # -- solving ------------------------------------------------------------------------------------
    def _solve(self) -> None:
        pending: list[list[ast.stmt]] = [tree.body for tree in self.program.trees]
        while pending:
            while pending:
                body = pending.pop()
                for statement in self._live_statements(body):
                    pending.extend(self._visit_live(statement))
            pending.extend(self._newly_live_bodies())

    def _live_statements(self, body: list[ast.stmt]) -> Iterator[ast.stmt]:
        for index, statement in enumerate(body):
            yield statement
            if isinstance(statement, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                for unreachable in body[index + 1 :]:
                    self.dead_statements[id(unreachable)] = f"unreachable after line {statement.lineno}"
                return

    def _visit_live(self, statement: ast.stmt) -> list[list[ast.stmt]]:
        """Record names referenced by ``statement``; return nested bodies that are live too."""
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in statement.decorator_list:
                self._reference(decorator)
            for default in statement.args.defaults + [d for d in statement.args.kw_defaults if d is not None]:
                self._reference(default)
            return []
        if isinstance(statement, ast.ClassDef):
            for base in statement.bases + statement.decorator_list:
                self._reference(base)
            return [statement.body] if id(statement) in self.live_classes else []
        if isinstance(statement, (ast.If, ast.While)):
            return self._visit_branch(statement)
        bodies: list[list[ast.stmt]] = []
        for _name, value in ast.iter_fields(statement):
            if isinstance(value, list) and value and all(isinstance(item, ast.stmt) for item in value):
                bodies.append(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.excepthandler):
                        bodies.append(item.body)
                    elif isinstance(item, ast.AST):
                        self._reference(item)
            elif isinstance(value, ast.AST):
                self._reference(value)
        return bodies

    def _visit_branch(self, statement: ast.If | ast.While) -> list[list[ast.stmt]]:
        self._reference(statement.test)
        truth = _main_guard(statement.test)
        if truth is None:
            truth = self.evaluator.truth(self._through_local(statement))
        reason = self._condition_reason(statement.test)
        if truth is not None and self.evidence.ran(statement.body if truth is False else statement.orelse):
            truth = None  # the logs show the branch the configuration calls off ran
        if truth is False:
            self._mark_dead(statement.body, f"behind `{ast.unparse(statement.test)}`, off{reason}")
            return [statement.orelse]
        if truth is True and isinstance(statement, ast.If):
            self._mark_dead(statement.orelse, f"in the `else` of `{ast.unparse(statement.test)}`, which is on{reason}")
            return [statement.body]
        return [statement.body, statement.orelse]

    def _through_local(self, statement: ast.If | ast.While) -> ast.expr:
        """``use_slot = getattr(args, "slot_enabled", False)`` then ``if use_slot:``: the test a local flag
        stands for, when the function binds that name exactly once."""
        test = statement.test
        function = self.program.enclosing_function(statement)
        if not isinstance(test, ast.Name) or function is None:
            return test
        values = [
            node.value
            for node in ast.walk(function)
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr))
            and any(isinstance(t, ast.Name) and t.id == test.id for t in _assigned(node))
        ]
        loop_bound = any(
            isinstance(node, (ast.For, ast.comprehension)) and test.id in _names(node.target)
            for node in ast.walk(function)
        )
        if len(values) != 1 or values[0] is None or loop_bound or isinstance(values[0], ast.Name):
            return test
        return values[0]

    def _mark_dead(self, body: list[ast.stmt], reason: str) -> None:
        for dead in body:
            self.dead_statements[id(dead)] = reason
            for node in ast.walk(dead):
                if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                    name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                    self.dead_references.setdefault(name, reason)

    def _condition_reason(self, test: ast.expr) -> str:
        names = [n.id for n in ast.walk(test) if isinstance(n, ast.Name)]
        names += [n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)]
        described = self.config.describe_names(names)
        return f" ({described})" if described else ""

    def _reference(self, node: ast.AST) -> None:
        for child in _referencing_nodes(node, self.evaluator):
            if isinstance(child, ast.Name):
                self.referenced.add(child.id)
            elif isinstance(child, ast.Attribute):
                self.referenced.add(child.attr)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str) and child.value.isidentifier():
                self.referenced.add(child.value)

    def _newly_live_bodies(self) -> list[list[ast.stmt]]:
        bodies: list[list[ast.stmt]] = []
        for node in self.program.all_nodes():
            if (
                isinstance(node, ast.ClassDef)
                and id(node) not in self.live_classes
                and node.name in self.referenced
                and self._container_live(node)
            ):
                self.live_classes.add(id(node))
                bodies.append(node.body)
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and id(node) not in self.live_functions
                and self._function_called(node)
                and self._container_live(node)
            ):
                self.live_functions.add(id(node))
                bodies.append(node.body)
        return bodies

    def _function_called(self, node: FunctionNode) -> bool:
        owner = self.program.enclosing_class(node)
        if owner is not None and (node.name in ALWAYS_LIVE_METHODS or node.name.startswith("__")):
            return True
        return node.name in self.referenced

    def _container_live(self, node: ast.AST) -> bool:
        parent = self.program.parents.get(id(node))
        while parent is not None:
            if id(parent) in self.dead_statements:
                return False
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return id(parent) in self.live_functions
            if isinstance(parent, ast.ClassDef):
                return id(parent) in self.live_classes
            parent = self.program.parents.get(id(parent))
        return id(node) not in self.dead_statements


def _main_guard(test: ast.expr) -> bool | None:
    """``if __name__ == "__main__"`` is taken and ``!=`` is not: the script is run as a program."""
    if (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Eq, ast.NotEq))
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    ):
        return isinstance(test.ops[0], ast.Eq)
    return None


def _referencing_nodes(node: ast.AST, evaluator: Evaluator) -> Iterator[ast.AST]:
    """Nodes under ``node`` that name something, skipping the branch of a decided conditional expression."""
    if isinstance(node, ast.IfExp):
        truth = evaluator.truth(node.test)
        yield from _referencing_nodes(node.test, evaluator)
        branches = [node.body, node.orelse] if truth is None else [node.body if truth else node.orelse]
        for branch in branches:
            yield from _referencing_nodes(branch, evaluator)
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _referencing_nodes(child, evaluator)


def _assigned(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return [t for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return [node.target]
    return []


def _names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


PRINT_PREFIX_CHARS = 10  # a log line's literal opening this long, printed by one call only, identifies that call


class LogEvidence:
    """Which code the logs prove ran: a print/log call whose literal opening (``f"lora_ttt_batched: short=..."``
    → ``lora_ttt_batched: short=``) is printed by no other call of the program and opens a line of a log
    (``logged``: the runs' output lines, each after a newline, without source copied into the log)."""

    def __init__(self, program: Program, logged: str) -> None:
        self.program = program
        self.logged = logged
        self.unique: set[str] = set()
        if logged:
            counts: dict[str, int] = {}
            for node in program.all_nodes():
                prefix = _printed_prefix(node)
                if prefix is not None:
                    counts[prefix] = counts.get(prefix, 0) + 1
            self.unique = {prefix for prefix, count in counts.items() if count == 1}

    def ran(self, body: list[ast.stmt]) -> bool:
        """A unique log line of ``body``, or of a function it calls (one level), is in the logs."""
        if not self.unique or not body:
            return False
        called: set[str] = set()
        for statement in body:
            for node in ast.walk(statement):
                if self._seen(node):
                    return True
                if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                    called.add(node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
        for name in called:
            for function in self.program.functions.get(name, []):
                if any(self._seen(node) for node in ast.walk(function)):
                    return True
        return False

    def _seen(self, node: ast.AST) -> bool:
        prefix = _printed_prefix(node)
        return prefix is not None and prefix in self.unique and "\n" + prefix in self.logged


def _printed_prefix(node: ast.AST) -> str | None:
    """``log0(f"ttt_final val_loss:{x}")`` → ``ttt_final val_loss:``; None when not a print/log call or when the
    opening literal is too short to identify it."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.func, (ast.Name, ast.Attribute))):
        return None
    name = (node.func.id if isinstance(node.func, ast.Name) else node.func.attr).lower()
    if name != "print" and "log" not in name:
        return None
    first = node.args[0]
    if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
        first = first.values[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    text = first.value.strip()
    return text if len(text) >= PRINT_PREFIX_CHARS else None
