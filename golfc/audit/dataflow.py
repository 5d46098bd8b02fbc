"""Where validation tokens flow: a flow-sensitive taint pass over every function, with call summaries.

Each function is interpreted statement by statement. A name is *val-tainted* when its value derives from
validation data (``val_tokens``, ``load_validation_tokens(...)``, ``fineweb_val_*`` paths, a parameter a
caller passed tainted data to) and *target-tainted* when it derives from the tokens being predicted
(``y``, ``targets``, ``labels``). Along the way the pass records ordered *events*:

- SCORE: a loss over val-tainted data accumulated under ``no_grad``/``inference_mode`` or after
  ``model.eval()`` (or into a nll/bpb accumulator), or a call of a function that does so;
- BACKWARD: ``.backward()`` / ``autograd.grad`` of a val-tainted value, or a call of a function whose
  val backward is not preceded by a score of the same data (the decision moves to the caller);
- CALIBRATION: a GPTQ / Hessian / calibration call.

Loop-carried flow is covered by interpreting loop bodies twice. The analysis is a reviewer's aid: it names
data by identifiers, so it is precise on the usual Parameter Golf idioms and conservative elsewhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from golfc.audit.program import FunctionNode, Program
from golfc.audit.vocabulary import (
    CALIBRATION_WORDS,
    LOSS_WORDS,
    QUANT_WORDS,
    SCORE_ACCUMULATOR_WORDS,
    call_name,
    dotted,
    has_words,
    is_lossy,
    is_target_name,
    is_val_source,
    is_val_string,
)

SCORE, BACKWARD, CALIBRATION = "score", "backward", "calibration"
NO_GRAD_CALLS = {"no_grad", "inference_mode"}
ACCUMULATING_METHODS = {"append", "extend", "add_", "index_add_", "scatter_add_", "copy_", "put_"}
Scope = FunctionNode | ast.Module
MAX_ROUNDS = 8
# returns val by itself, scores by itself, scores given val arguments, defers a backward, accumulates a loss,
# returns val given val arguments
SUMMARY_FLAGS = 6
SELF_NAMES = frozenset({"self", "cls"})  # ``self.val_tokens`` is the object's own validation data


@dataclass(frozen=True)
class Event:
    """Something a function does to validation data, in textual order."""

    kind: str
    node: ast.AST
    loops: tuple[ast.AST, ...]  # enclosing loops inside the function, outermost first
    roots: frozenset[str]  # the names it reads, with everything they derive from
    val_roots: frozenset[str]  # the val-tainted ones
    accumulator: str | None = None
    via: FunctionNode | None = None  # the callee, for events made by a call
    val_data: bool = True  # the event consumes validation data (always for SCORE/BACKWARD)

    @property
    def order(self) -> tuple[int, int]:
        return getattr(self.node, "lineno", 0), getattr(self.node, "col_offset", 0)


@dataclass
class FunctionFacts:
    scope: Scope
    events: list[Event] = field(default_factory=list)
    returns_val: bool = False
    touches_val: bool = False
    loop_variables: dict[int, set[str]] = field(default_factory=dict)
    definitions: dict[str, list[ast.expr]] = field(default_factory=dict)
    tainted_params: frozenset[str] = frozenset()
    accumulates_loss: bool = False  # adds a val loss into a loss accumulator, whatever the grad mode
    passes_val_to: dict[int, set[str]] = field(default_factory=dict)  # callee node id → params it fills with val
    derivations: dict[tuple, bool] = field(default_factory=dict, repr=False)  # memo of rules.common.derives

    def of_kind(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]

    @property
    def name(self) -> str:
        return getattr(self.scope, "name", "<module>")


@dataclass
class State:
    val: set[str] = field(default_factory=set)
    target: set[str] = field(default_factory=set)
    deps: dict[str, frozenset[str]] = field(default_factory=dict)

    def copy(self) -> State:
        return State(set(self.val), set(self.target), dict(self.deps))

    def merge(self, other: State) -> None:
        self.val |= other.val
        self.target |= other.target
        for key, value in other.deps.items():
            self.deps[key] = self.deps.get(key, frozenset()) | value


def reads(node: ast.AST | None) -> set[str]:
    """Names and dotted attribute paths an expression reads."""
    if node is None:
        return set()
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            path = dotted(child)
            if path is not None:
                found.add(path)
    return found


def is_no_grad(item: ast.withitem | ast.expr) -> bool:
    expr = item.context_expr if isinstance(item, ast.withitem) else item
    return isinstance(expr, ast.Call) and call_name(expr) in NO_GRAD_CALLS


def parameter_names(scope: Scope) -> list[str]:
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    arguments = scope.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return names


def returned_names(scope: Scope) -> set[str]:
    """Names the function's return values are computed from, through its assignments."""
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return set()
    nodes = own_nodes(scope)
    names = {n for r in nodes if isinstance(r, ast.Return) and r.value is not None for n in reads(r.value)}
    assigns = [a for a in nodes if isinstance(a, (ast.Assign, ast.AnnAssign)) and a.value is not None]
    for _ in range(4):
        grown = set(names)
        for assign in assigns:
            targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
            if any(name in names for target in targets for name in bound_names(target)):
                grown |= reads(assign.value)
        if grown == names:
            break
        names = grown
    return {name.split(".")[0] for name in names}


DETACHING_CALLS = {"item", "detach", "float", "tolist", "cpu"}


def is_detached(value: ast.expr) -> bool:
    """``loss.item() * n``, ``nll.detach()``, ``float(loss)``: a number taken out of the graph, i.e. a committed
    score even when the same loss is back-propagated right after (score and step from one forward)."""
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr in DETACHING_CALLS and node.func.attr != "float")
            or (isinstance(node.func, ast.Name) and node.func.id == "float")
        )
        for node in ast.walk(value)
    )


def claimed_indices(loop: ast.While) -> set[str]:
    """``idx = claim_next(counter)`` then ``batches[idx]`` in a ``while`` body: the iteration's position in the
    data (a work queue), so what the body reads through it changes with every iteration."""
    assigned: set[str] = set()
    indices: set[str] = set()
    for statement in loop.body:
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)
            ):
                assigned.add(node.targets[0].id)
            elif isinstance(node, ast.Subscript):
                indices.update(n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name))
    return assigned & indices


def bound_names(target: ast.AST) -> list[str]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in bound_names(elt)]
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    path = dotted(target)
    return [path] if path is not None else []


class FunctionAnalyzer:
    """One flow-sensitive pass over one function body."""

    def __init__(
        self,
        flow: Dataflow,
        scope: Scope,
        tainted_params: frozenset[str],
        params_by_name: bool = True,
        map_calls: bool = False,
    ) -> None:
        self.flow = flow
        self.map_calls = map_calls  # record which callee parameters this function fills with validation data
        self.facts = FunctionFacts(scope, tainted_params=tainted_params)
        # The intrinsic pass (params_by_name=False) does not read a parameter called ``val_tokens`` as
        # validation data: whether it is one is the callers' business, so a function that trains on what it
        # is given defers the score-first question to its call sites.
        self.clean_names = frozenset() if params_by_name else frozenset(parameter_names(scope)) - SELF_NAMES
        self.loops: list[ast.AST] = []
        self.no_grad = isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            is_no_grad(d) or (isinstance(d, ast.Attribute) and d.attr in NO_GRAD_CALLS) for d in scope.decorator_list
        )
        self.eval_mode = False  # after ``model.eval()`` and before ``model.train()``, in textual order
        self.recording = True
        self.seen: set[tuple[str, int]] = set()
        # what the function reports: a detached loss summed into one of these is its committed score, while
        # one only logged (``train_loss += loss.item()`` in a pre-quant TTT loop) is not
        self.returned = returned_names(scope)

    def run(self) -> FunctionFacts:
        state = State()
        for name in self.facts.tainted_params:
            state.val.add(name)
        if isinstance(self.facts.scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in self.facts.scope.args.args + self.facts.scope.args.kwonlyargs:
                if is_target_name(arg.arg):
                    state.target.add(arg.arg)
        self.block(self.facts.scope.body, state)
        return self.facts

    # -- taint of expressions -----------------------------------------------------------------------
    def val_tainted(self, node: ast.AST | None, state: State) -> bool:
        if node is None:
            return False
        pending: list[ast.AST] = [node]
        while pending:
            child = pending.pop()
            if isinstance(child, (ast.Name, ast.Attribute)):
                key = dotted(child)
                if key is not None and key in state.val:
                    return True
                label = child.id if isinstance(child, ast.Name) else child.attr
                if self.names_val_source(child, label):
                    return True
            elif is_val_string(child):
                return True
            elif isinstance(child, ast.Call):
                name = call_name(child)
                if self.flow.returns_val(name):
                    return True
                if name in self.flow.program.functions and not isinstance(child.func, ast.Attribute):
                    # a function of the program: its result is validation data only if its summary says so
                    # (``train_model(h, val_data)`` returns a model, not val tokens)
                    arguments = [*child.args, *(k.value for k in child.keywords)]
                    if self.flow.returns_val_given(name) and any(self.val_tainted(a, state) for a in arguments):
                        return True
                    continue
            pending.extend(ast.iter_child_nodes(child))
        return False

    def names_val_source(self, node: ast.Name | ast.Attribute, label: str) -> bool:
        """The name alone says validation data (``val_tokens``, ``args.val_files``), unless it is a knob or a
        parameter whose taint the callers decide."""
        if not is_val_source(label) or label in self.flow.knobs:
            return False
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        return not (isinstance(root, ast.Name) and root.id in self.clean_names)

    def target_tainted(self, node: ast.AST | None, state: State) -> bool:
        if node is None:
            return False
        for child in ast.walk(node):
            if isinstance(child, (ast.Name, ast.Attribute)):
                key = dotted(child)
                label = child.id if isinstance(child, ast.Name) else child.attr
                if (key is not None and key in state.target) or is_target_name(label):
                    return True
        return False

    def roots(self, node: ast.AST | None, state: State) -> frozenset[str]:
        direct = reads(node)
        found = set(direct)
        for key in direct:
            found |= state.deps.get(key, frozenset())
        return frozenset(found)

    def val_roots(self, roots: frozenset[str], state: State) -> frozenset[str]:
        return frozenset(key for key in roots if key in state.val or self._key_names_val(key))

    def _key_names_val(self, key: str) -> bool:
        label = key.split(".")[-1]
        return is_val_source(label) and label not in self.flow.knobs and key.split(".")[0] not in self.clean_names

    # -- statements ---------------------------------------------------------------------------------
    def block(self, body: list[ast.stmt], state: State) -> None:
        for statement in body:
            self.statement(statement, state)

    def statement(self, node: ast.stmt, state: State) -> None:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is not None:
            handler(node, state)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expression(child, state)

    def _Assign(self, node: ast.Assign, state: State) -> None:
        self.expression(node.value, state)
        for target in node.targets:
            self.bind(target, node.value, state)
            if isinstance(target, ast.Subscript):
                self.maybe_score(node, target.value, node.value, state)

    def _AnnAssign(self, node: ast.AnnAssign, state: State) -> None:
        if node.value is not None:
            self.expression(node.value, state)
            self.bind(node.target, node.value, state)

    def _AugAssign(self, node: ast.AugAssign, state: State) -> None:
        self.expression(node.value, state)
        key = dotted(node.target.value if isinstance(node.target, ast.Subscript) else node.target)
        if key is not None:
            if self.val_tainted(node.value, state):
                state.val.add(key)
            if self.target_tainted(node.value, state):
                state.target.add(key)
            state.deps[key] = state.deps.get(key, frozenset()) | self.roots(node.value, state)
            self.note_counter(key, node.value, state)
        self.maybe_score(node, node.target, node.value, state)

    def _For(self, node: ast.For | ast.AsyncFor, state: State) -> None:
        self.expression(node.iter, state)
        self.loop(node, state, lambda s: self.bind(node.target, node.iter, s, loop_target=True))

    _AsyncFor = _For

    def _While(self, node: ast.While, state: State) -> None:
        self.expression(node.test, state)
        self.loop(node, state, lambda s: None)

    def loop(self, node: ast.For | ast.AsyncFor | ast.While, state: State, enter) -> None:
        variables = self.facts.loop_variables.setdefault(id(node), set())
        if isinstance(node, (ast.For, ast.AsyncFor)):
            variables.update(bound_names(node.target))
        else:
            variables.update(reads(node.test))
            variables.update(claimed_indices(node))
        self.loops.append(node)
        was_recording = self.recording
        for recording in (False, was_recording):
            self.recording = recording
            entry = state.copy()
            enter(entry)
            self.block(node.body, entry)
            state.merge(entry)
        self.recording = was_recording
        self.loops.pop()
        self.block(node.orelse, state)

    def _If(self, node: ast.If, state: State) -> None:
        self.expression(node.test, state)
        other = state.copy()
        self.block(node.body, state)
        self.block(node.orelse, other)
        state.merge(other)

    def _With(self, node: ast.With | ast.AsyncWith, state: State) -> None:
        for item in node.items:
            self.expression(item.context_expr, state)
            if item.optional_vars is not None:
                self.bind(item.optional_vars, item.context_expr, state)
        entering_no_grad = any(is_no_grad(item) for item in node.items)
        enabling = any(
            isinstance(i.context_expr, ast.Call) and call_name(i.context_expr) == "enable_grad" for i in node.items
        )
        previous = self.no_grad
        self.no_grad = (previous or entering_no_grad) and not enabling
        self.block(node.body, state)
        self.no_grad = previous

    _AsyncWith = _With

    def _Try(self, node: ast.Try, state: State) -> None:
        self.block(node.body, state)
        for handler in node.handlers:
            self.block(handler.body, state)
        self.block(node.orelse, state)
        self.block(node.finalbody, state)

    _TryStar = _Try

    def _Return(self, node: ast.Return, state: State) -> None:
        if node.value is not None:
            self.expression(node.value, state)
            if self.val_tainted(node.value, state):
                self.facts.returns_val = True

    def _Expr(self, node: ast.Expr, state: State) -> None:
        self.expression(node.value, state)

    # -- bindings -----------------------------------------------------------------------------------
    def bind(self, target: ast.AST, value: ast.expr, state: State, loop_target: bool = False) -> None:
        if (
            isinstance(target, (ast.Tuple, ast.List))
            and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts)
            and not loop_target
        ):
            for single_target, single_value in zip(target.elts, value.elts):
                self.bind(single_target, single_value, state)
            return
        tainted_val = self.val_tainted(value, state)
        tainted_target = self.target_tainted(value, state)
        deps = self.roots(value, state)
        if isinstance(target, ast.Subscript):
            key = dotted(target.value)
            if key is not None:
                if tainted_val:
                    state.val.add(key)
                state.deps[key] = state.deps.get(key, frozenset()) | deps
            return
        for name in bound_names(target):
            self.facts.definitions.setdefault(name, []).append(value)
            state.deps[name] = deps | ({name} if loop_target else frozenset())
            for flag, table in ((tainted_val, state.val), (tainted_target, state.target)):
                if flag:
                    table.add(name)
                else:
                    table.discard(name)
            if tainted_target is False and is_target_name(name.split(".")[-1]):
                state.target.add(name)
        if (
            self.loops
            and isinstance(value, ast.BinOp)
            and any(isinstance(c, ast.Name) and c.id in bound_names(target) for c in ast.walk(value))
        ):
            for name in bound_names(target):
                self.note_counter(name, value, state)

    def note_counter(self, name: str, value: ast.expr, state: State) -> None:
        """``pos += stride`` inside a loop: the loop walks through data by this name."""
        if self.loops and not self.val_tainted(value, state):
            self.facts.loop_variables.setdefault(id(self.loops[-1]), set()).add(name)

    # -- events -------------------------------------------------------------------------------------
    def expression(self, node: ast.expr, state: State) -> None:
        if self.val_tainted(node, state):
            self.facts.touches_val = True
        for call in sorted(
            (c for c in ast.walk(node) if isinstance(c, ast.Call)), key=lambda c: (c.lineno, c.col_offset)
        ):
            self.call(call, state)

    def call(self, node: ast.Call, state: State) -> None:
        if self.map_calls:
            self.flow.map_arguments(self, node, state, self.facts.passes_val_to)
        name = call_name(node)
        func = node.func
        arguments = list(node.args) + [kw.value for kw in node.keywords]
        if name == "backward" and isinstance(func, ast.Attribute) and self.val_tainted(func.value, state):
            self.record(BACKWARD, node, func.value, state)
        elif name == "grad" and node.args and self.val_tainted(node.args[0], state) and "autograd" in ast.unparse(func):
            self.record(BACKWARD, node, node.args[0], state)
        elif name in ACCUMULATING_METHODS and isinstance(func, ast.Attribute) and arguments:
            self.maybe_score(node, func.value, ast.Tuple(elts=arguments, ctx=ast.Load()), state)
        if name is None:
            return
        if name in ("eval", "train") and isinstance(func, ast.Attribute) and len(arguments) <= 1:
            switched_off = arguments and isinstance(arguments[0], ast.Constant) and not arguments[0].value
            self.eval_mode = name == "eval" or bool(switched_off)
        receiver = [func.value] if isinstance(func, ast.Attribute) else []
        tainted_args = any(self.val_tainted(arg, state) for arg in arguments + receiver)
        payload = ast.Tuple(elts=arguments + receiver, ctx=ast.Load())
        scored_here = tainted_args and (self.no_grad or self.eval_mode) and self.flow.accumulates_loss(name)
        if (self.flow.scores(name, tainted_args) or scored_here) and name not in ACCUMULATING_METHODS:
            self.record(SCORE, node, payload, state, via=self.flow.first_def(name))
        if tainted_args and self.flow.defers_backward(name):
            self.record(BACKWARD, node, payload, state, via=self.flow.first_def(name))
        if has_words(name, CALIBRATION_WORDS) or (receiver and self.calibrator(receiver[0])):
            self.record(CALIBRATION, node, payload, state, val_data=tainted_args)

    def calibrator(self, receiver: ast.expr) -> bool:
        """``gq.add_batch(x)`` after ``gq = GPTQ(model)``: a method of an object built by a calibrator class."""
        key = dotted(receiver)
        return key is not None and any(
            isinstance(value, ast.Call) and has_words(call_name(value) or "", CALIBRATION_WORDS)
            for value in self.facts.definitions.get(key, [])
        )

    def maybe_score(self, node: ast.AST, accumulator: ast.expr, value: ast.expr, state: State) -> None:
        key = dotted(accumulator.value if isinstance(accumulator, ast.Subscript) else accumulator)
        name = key.split(".")[-1] if key is not None else ""
        if not self.val_tainted(value, state) or not (is_lossy(value) or has_words(name, LOSS_WORDS)):
            return
        committed = key is not None and (
            has_words(name, SCORE_ACCUMULATOR_WORDS)
            or (has_words(name, LOSS_WORDS) and is_detached(value) and key.split(".")[0] in self.returned)
        )
        if self.no_grad or self.eval_mode or committed:
            self.record(SCORE, node, value, state, accumulator=key)
        elif key is not None and has_words(name, LOSS_WORDS) and self.recording:
            self.facts.accumulates_loss = True  # ``loss_sum += nll.sum()``: a score when called under no_grad

    def record(
        self,
        kind: str,
        node: ast.AST,
        data: ast.AST,
        state: State,
        accumulator: str | None = None,
        via: FunctionNode | None = None,
        val_data: bool = True,
    ) -> None:
        if not self.recording:
            return
        marker = (kind, id(node))
        if marker in self.seen:
            return
        self.seen.add(marker)
        roots = self.roots(data, state)
        self.facts.events.append(
            Event(
                kind,
                node,
                tuple(self.loops),
                roots,
                self.val_roots(roots, state),
                accumulator,
                via,
                val_data,
            )
        )


# ==================================================================================================
# Resolution: is each val backward preceded by a committed score of the same data?
# ==================================================================================================
SCORE_FIRST, TRAIN_FIRST, RESCORED, DEFERRED = "score-first", "train-first", "rescored", "deferred"


@dataclass(frozen=True)
class Resolution:
    outcome: str
    backward: Event
    score: Event | None = None  # the score that makes it legal, or the one that comes too late


def overlaps(first: Event, second: Event) -> bool:
    return bool(first.val_roots & second.val_roots)


def common_loops(first: Event, second: Event) -> list[ast.AST]:
    return [loop for loop in first.loops if any(loop is other for other in second.loops)]


def fresh_each_iteration(facts: FunctionFacts, loop: ast.AST, event: Event) -> bool:
    """The event's data changes with the loop's iteration (a chunk loop), rather than repeating (an epoch loop)."""
    return bool(event.roots & facts.loop_variables.get(id(loop), set()))


def resolve(facts: FunctionFacts, backward: Event, intrinsic: FunctionFacts | None = None) -> Resolution:
    """How a val backward relates to the scores of the same data in its function."""
    scores = [s for s in facts.of_kind(SCORE) if overlaps(s, backward) and s.node is not backward.node]
    for score in scores:
        shared = common_loops(score, backward)
        if score.order > backward.order and shared:
            return Resolution(RESCORED, backward, score)
        if any(not fresh_each_iteration(facts, loop, score) for loop in shared):
            return Resolution(RESCORED, backward, score)
    later = [s for s in scores if s.order > backward.order]
    earlier = [s for s in scores if s.order < backward.order]
    if later:
        return Resolution(TRAIN_FIRST, backward, later[0])
    if earlier:
        return Resolution(SCORE_FIRST, backward, earlier[-1])
    if (
        intrinsic is not None
        and not any(e.node is backward.node for e in intrinsic.of_kind(BACKWARD))
        and quantizes_after(facts, backward.node) is None
    ):
        # tainted only through parameters: the callers decide whether those tokens were scored. Not when the
        # artifact is quantized/serialized after it in this function: that is pre-quant TTT whoever calls it.
        return Resolution(DEFERRED, backward)
    return Resolution(TRAIN_FIRST, backward)


# ==================================================================================================
# The whole program
# ==================================================================================================
class Dataflow:
    """Facts for every function, solved to a fixpoint over call-site taint and callee summaries."""

    def __init__(self, program: Program, knobs: set[str]) -> None:
        self.program = program
        self.knobs = knobs
        self.scopes: list[Scope] = [*program.trees, *program.function_nodes()]
        self.params: dict[int, frozenset[str]] = {id(scope): frozenset() for scope in self.scopes}
        self.intrinsic: dict[int, FunctionFacts] = {}
        self.facts: dict[int, FunctionFacts] = {}
        self._summary: dict[str, tuple[bool, ...]] = {}
        self._solve()

    # -- summaries used by the analyzer -------------------------------------------------------------
    def first_def(self, name: str) -> FunctionNode | None:
        defs = self.program.functions.get(name)
        return defs[0] if defs else None

    def _flags(self, name: str) -> tuple[bool, ...]:
        return self._summary.get(name, (False,) * SUMMARY_FLAGS)

    def returns_val(self, name: str | None) -> bool:
        return name is not None and self._flags(name)[0]

    def scores(self, name: str, tainted_args: bool) -> bool:
        _, intrinsic, with_params, _, _, _ = self._flags(name)
        return intrinsic or (tainted_args and with_params)

    def returns_val_given(self, name: str) -> bool:
        """The function returns validation data when its callers pass it some."""
        return self._flags(name)[5]

    def defers_backward(self, name: str) -> bool:
        return self._flags(name)[3]

    def accumulates_loss(self, name: str) -> bool:
        """The function adds a validation loss into an accumulator (``_accumulate_bpb``): a call of it under
        ``no_grad`` or after ``model.eval()`` commits a score."""
        return self._flags(name)[4]

    def _summaries(self) -> dict[str, tuple[bool, ...]]:
        table: dict[str, tuple[bool, ...]] = {}
        for name, defs in self.program.functions.items():
            flags = [False] * SUMMARY_FLAGS
            for node in defs:
                intrinsic, facts = self.intrinsic.get(id(node)), self.facts.get(id(node))
                if intrinsic is not None:
                    flags[0] |= intrinsic.returns_val
                    flags[1] |= bool(intrinsic.of_kind(SCORE))
                if facts is not None:
                    flags[2] |= bool(facts.of_kind(SCORE))
                    flags[3] |= any(resolve(facts, b, intrinsic).outcome == DEFERRED for b in facts.of_kind(BACKWARD))
                    flags[4] |= facts.accumulates_loss
                    flags[5] |= facts.returns_val
            table[name] = tuple(flags)
        return table

    # -- solving ------------------------------------------------------------------------------------
    def _solve(self) -> None:
        """Rounds until parameter taint and summaries are stable; a round re-analyses only the functions whose
        tainted parameters changed or that call a function whose summary changed."""
        calls = {id(scope): called_names(scope) for scope in self.scopes}
        dirty = {id(scope) for scope in self.scopes}
        for _ in range(MAX_ROUNDS):
            for scope in self.scopes:
                if id(scope) in dirty:
                    self.intrinsic[id(scope)] = FunctionAnalyzer(self, scope, frozenset(), params_by_name=False).run()
                    self.facts[id(scope)] = FunctionAnalyzer(self, scope, self.params[id(scope)], map_calls=True).run()
            params = self._call_site_taint()
            summary = self._summaries()
            changed_params = {key for key, value in params.items() if value != self.params.get(key)}
            changed_names = {
                name for name in summary.keys() | self._summary.keys() if summary.get(name) != self._summary.get(name)
            }
            if not changed_params and not changed_names:
                return
            self.params, self._summary = params, summary
            dirty = changed_params | {key for key, names in calls.items() if names & changed_names}

    def _call_site_taint(self) -> dict[int, frozenset[str]]:
        tainted: dict[int, set[str]] = {id(scope): set() for scope in self.scopes}
        for facts in self.facts.values():
            for callee, params in facts.passes_val_to.items():
                tainted.setdefault(callee, set()).update(params)
        return {key: frozenset(value) for key, value in tainted.items()}

    def map_arguments(
        self, analyzer: FunctionAnalyzer, node: ast.Call, state: State, tainted: dict[int, set[str]]
    ) -> None:
        name = call_name(node)
        for callee in self.program.functions.get(name or "", []):
            params = [a.arg for a in callee.args.posonlyargs + callee.args.args]
            if isinstance(node.func, ast.Attribute) and params and params[0] in ("self", "cls"):
                params = params[1:]
            for param, arg in zip(params, node.args):
                if analyzer.val_tainted(arg, state):
                    tainted.setdefault(id(callee), set()).add(param)
            for keyword in node.keywords:
                if keyword.arg is not None and analyzer.val_tainted(keyword.value, state):
                    tainted.setdefault(id(callee), set()).add(keyword.arg)

    # -- queries for rules --------------------------------------------------------------------------
    def all_facts(self) -> list[FunctionFacts]:
        return [self.facts[id(scope)] for scope in self.scopes]

    def facts_of(self, scope: Scope) -> FunctionFacts:
        return self.facts[id(scope)]

    def resolve(self, facts: FunctionFacts, backward: Event) -> Resolution:
        intrinsic = None if isinstance(facts.scope, ast.Module) else self.intrinsic.get(id(facts.scope))
        return resolve(facts, backward, intrinsic)

    def call_sites(self, name: str) -> list[tuple[FunctionFacts, ast.Call]]:
        sites = []
        for facts in self.all_facts():
            for node in _own_nodes(facts.scope):
                if isinstance(node, ast.Call) and call_name(node) == name:
                    sites.append((facts, node))
        return sites


def called_names(scope: Scope) -> set[str]:
    """Names of the calls a scope's own code makes (lambdas included, nested defs and classes not)."""
    names: set[str] = set()
    stack: list[ast.AST] = [
        s for s in scope.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name is not None:
                names.add(name)
        stack.extend(
            c
            for c in ast.iter_child_nodes(node)
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        )
    return names


def _own_nodes(scope: Scope) -> list[ast.AST]:
    """Nodes of a scope, not descending into nested functions or classes. Computed once per scope (the rules ask
    for the same scopes thousands of times; the trees are never changed after parsing) and kept on the node."""
    cached = getattr(scope, "_golfc_own_nodes", None)
    if cached is None:
        cached = _collect_own_nodes(scope)
        scope._golfc_own_nodes = cached  # type: ignore[union-attr]
    return cached


def _collect_own_nodes(scope: Scope) -> list[ast.AST]:
    found: list[ast.AST] = []
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    stack: list[ast.AST] = [statement for statement in scope.body if not isinstance(statement, nested)]
    while stack:
        node = stack.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, nested):
                stack.append(child)
    return found


def own_nodes(scope: Scope) -> list[ast.AST]:
    return _own_nodes(scope)


def quantizes_after(facts: FunctionFacts, node: ast.AST) -> ast.Call | None:
    """A quantize / serialize / GPTQ call later in the same function."""
    line = getattr(node, "lineno", 0)
    for candidate in sorted(_own_nodes(facts.scope), key=lambda n: getattr(n, "lineno", 0)):
        if isinstance(candidate, ast.Call) and getattr(candidate, "lineno", 0) > line:
            name = call_name(candidate)
            if name is not None and has_words(name, QUANT_WORDS):
                return candidate
    return None
