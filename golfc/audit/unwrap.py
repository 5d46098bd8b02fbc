"""Read the real source behind a self-extracting ``train_gpt.py`` without running any of it.

A wrapper carries its program as a literal (base85/base64 text, bytes) passed through a chain of decode
calls (``lzma.decompress``, ``b85decode``, ``zlib.decompress``, ``brotli.decompress``, ``.decode()``,
``.split('\\0')`` …) and handed to ``exec``. This module evaluates such chains *statically*: it walks the
wrapper's AST, resolves module-level names and import aliases, and applies only a whitelist of pure
decoding functions to literal data. Nothing the submission defines is ever called: a module-level decoder it
defines (``def d(s): return lzma.decompress(b85decode(s))``, or the same as a lambda) is read, not run — its one
return expression is evaluated like any other, with its parameters bound to the call's arguments. A decoded text that
is itself a wrapper is peeled again (nested exec layers); a payload of ``name\\x01source`` parts joined by
``\\x00`` (golfc's layout) becomes one source unit per section.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from golfc.audit.findings import INPUT_RULE, Finding, Severity
from golfc.audit.parsing import needs_newer_python, parse_python, running_python
from golfc.audit.reach import ValueFlow
from golfc.audit.reading import read_limited

MAX_DECODED_BYTES = 256 * 1024 * 1024  # refuse decompression bombs
MAX_LAYERS = 8
SECTION_SEPARATOR = "\x00"
NAME_SEPARATOR = "\x01"


@dataclass(frozen=True)
class SourceUnit:
    """One piece of Python source: the shipped file, or a layer or section found inside it."""

    label: str  # how findings name it: "train_gpt.py", "train_gpt.py[core/train]"
    text: str
    depth: int  # wrapper layers peeled to reach it
    is_leaf: bool = True  # carries no further payload
    in_parent_text: bool = False  # exec'd from a string literal: its bytes are already in the parent's text


@dataclass
class Unwrapped:
    """The shipped script and everything decoded from it."""

    path: Path
    shipped_bytes: int
    units: list[SourceUnit] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # one line per decoded payload: "line 3: b85decode → lzma"
    problems: list[Finding] = field(default_factory=list)

    @property
    def unwrapped_bytes(self) -> int:
        """UTF-8 bytes of the real program: every unit that carries no further payload."""
        return sum(len(unit.text.encode("utf-8")) for unit in self.units if unit.is_leaf and not unit.in_parent_text)

    @property
    def is_wrapped(self) -> bool:
        return bool(self.layers)


class NotStatic(Exception):
    """The expression depends on something a static evaluation cannot know."""


class DecodeFailure(Exception):
    """A whitelisted decoder was applied to literal data and rejected it (truncated or corrupt payload)."""


@dataclass(frozen=True)
class ModuleRef:
    name: str


@dataclass(frozen=True)
class CompiledRef:
    """The value of ``compile(source, filename, mode)``: the source is what matters."""

    source: str
    filename: str


@dataclass(frozen=True)
class DecompressorRef:
    """``zstandard.ZstdDecompressor()`` or ``lzma.LZMADecompressor(...)``: an object with ``.decompress``."""

    codec: str
    options: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class InlineFunction:
    """A decoder the submission defines whose body is one expression: a lambda, or a ``def`` that only returns."""

    params: tuple[str, ...]
    body: ast.expr


MAX_INLINE_DEPTH = 8  # decoders calling decoders; deeper (or recursive) is not static


def inline_function(node: ast.FunctionDef | ast.Lambda) -> InlineFunction | None:
    """The function as an InlineFunction when it can be read as one: plain parameters (no defaults, no
    ``*args``/``**kwargs``, no keyword-only ones), no decorators, and a body that is a single ``return`` (a
    docstring may come first) or a lambda's expression; None otherwise."""
    args = node.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.kw_defaults:
        return None
    params = tuple(a.arg for a in (*args.posonlyargs, *args.args))
    if isinstance(node, ast.Lambda):
        return InlineFunction(params, node.body)
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # docstring
    if node.decorator_list or len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    return InlineFunction(params, body[0].value)


class PayloadTooLarge(DecodeFailure):
    """A decoder's output is over ``MAX_DECODED_BYTES`` (a decompression bomb, or simply too big to review)."""

    def __init__(self) -> None:
        super().__init__(f"decoded payload is larger than the {MAX_DECODED_BYTES // (1024 * 1024)} MiB limit")


def _capped(data: bytes) -> bytes:
    if len(data) > MAX_DECODED_BYTES:
        raise PayloadTooLarge()
    return data


def _bounded(value: object) -> object:
    """``value``, unless it is text or bytes over the limit: concatenation, ``str.replace`` and decoders calling
    decoders could otherwise build far more than any one decoder may return."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > MAX_DECODED_BYTES:
        raise PayloadTooLarge()
    return value


def _lzma_decompress(
    data: bytes,
    format: int = lzma.FORMAT_AUTO,
    memlimit: int | None = None,
    filters: list[dict[str, object]] | None = None,
) -> bytes:
    decompressor = lzma.LZMADecompressor(format=format, memlimit=memlimit, filters=filters)
    out = _capped(decompressor.decompress(_as_bytes(data), max_length=MAX_DECODED_BYTES + 1))
    if not decompressor.eof and format != lzma.FORMAT_RAW:
        raise DecodeFailure("lzma: compressed data ended before the end-of-stream marker was reached")
    if format == lzma.FORMAT_RAW and not decompressor.eof and decompressor.needs_input:
        raise DecodeFailure("lzma: raw stream ended before its end marker (truncated payload)")
    return out


def _zlib_decompress(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = _capped(decompressor.decompress(_as_bytes(data), MAX_DECODED_BYTES + 1))
    if not decompressor.eof:
        raise DecodeFailure("zlib: incomplete or truncated stream")
    return out


def _gzip_decompress(data: bytes) -> bytes:
    return _zlib_decompress(data, wbits=16 + zlib.MAX_WBITS)


def _bz2_decompress(data: bytes) -> bytes:
    decompressor = bz2.BZ2Decompressor()
    out = _capped(decompressor.decompress(_as_bytes(data), max_length=MAX_DECODED_BYTES + 1))
    if not decompressor.eof:
        raise DecodeFailure("bz2: compressed data ended before the end-of-stream marker was reached")
    return out


def _brotli_decompress(data: bytes) -> bytes:
    import brotli

    decompressor = brotli.Decompressor()
    try:
        out = _capped(decompressor.process(_as_bytes(data), output_buffer_limit=MAX_DECODED_BYTES + 1))
    except brotli.error as exc:
        raise DecodeFailure(f"brotli: corrupt stream ({exc})") from exc
    if not decompressor.is_finished():
        raise DecodeFailure("brotli: incomplete or truncated stream")
    return out


def _zstd_decompress(data: bytes, max_output_size: int = 0) -> bytes:
    import zstandard

    raw = _as_bytes(data)
    try:
        out = _capped(zstandard.ZstdDecompressor().stream_reader(raw).read(MAX_DECODED_BYTES + 1))
        complete = zstandard.ZstdDecompressor().decompressobj()  # the size is known to be sane by now
        complete.decompress(raw)
    except zstandard.ZstdError as exc:
        raise DecodeFailure(f"zstandard: corrupt stream ({exc})") from exc
    if not complete.eof:
        raise DecodeFailure("zstandard: incomplete or truncated frame")
    return out


def _as_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("ascii")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise NotStatic(f"expected bytes, got {type(value).__name__}")


def _b64(fn: Callable[..., bytes]) -> Callable[..., bytes]:
    return lambda data, *args, **kwargs: fn(_as_bytes(data), *args, **kwargs)


DECODERS: dict[str, Callable[..., object]] = {
    "lzma.decompress": _lzma_decompress,
    "zlib.decompress": _zlib_decompress,
    "gzip.decompress": _gzip_decompress,
    "bz2.decompress": _bz2_decompress,
    "brotli.decompress": _brotli_decompress,
    "zstandard.decompress": _zstd_decompress,
    "zstd.decompress": _zstd_decompress,
    "base64.b85decode": _b64(base64.b85decode),
    "base64.a85decode": _b64(base64.a85decode),
    "base64.b64decode": _b64(base64.b64decode),
    "base64.standard_b64decode": _b64(base64.standard_b64decode),
    "base64.urlsafe_b64decode": _b64(base64.urlsafe_b64decode),
    "base64.b32decode": _b64(base64.b32decode),
    "base64.b16decode": _b64(base64.b16decode),
    "base64.decodebytes": _b64(base64.decodebytes),
    "binascii.a2b_base64": _b64(binascii.a2b_base64),
    "binascii.unhexlify": _b64(binascii.unhexlify),
    "bytes.fromhex": bytes.fromhex,
}
CODEC_LABELS = {
    "b85decode": "base85",
    "a85decode": "ascii85",
    "b64decode": "base64",
    "b32decode": "base32",
    "b16decode": "base16",
    "urlsafe_b64decode": "base64",
    "standard_b64decode": "base64",
    "decodebytes": "base64",
    "a2b_base64": "base64",
    "unhexlify": "hex",
    "fromhex": "hex",
}
SAFE_MODULES = {"lzma", "zlib", "gzip", "bz2", "brotli", "zstandard", "zstd", "base64", "binascii", "codecs"}
STR_METHODS = {"decode", "encode", "split", "rsplit", "strip", "replace", "join", "splitlines", "lstrip", "rstrip"}
FAILURES = (lzma.LZMAError, zlib.error, binascii.Error, ValueError, EOFError, OSError, UnicodeDecodeError)


class StaticEvaluator:
    """Evaluates literal expressions and whitelisted decode calls of one module; records the codecs used.

    ``env`` holds module-level names; ``local_names`` are the ids of ``Name`` nodes that read a function's own
    variable (a parameter, a local that shadows a module name), which the module's value must not stand in for.
    """

    def __init__(self, env: dict[str, object], local_names: frozenset[int] = frozenset()) -> None:
        self.env = env
        self.local_names = local_names
        self.codecs: list[str] = []
        self.bindings: list[dict[str, object]] = []  # parameters of the InlineFunctions being evaluated

    def evaluate(self, node: ast.expr) -> object:
        handler = getattr(self, f"_eval_{type(node).__name__}", None)
        if handler is None:
            raise NotStatic(type(node).__name__)
        return handler(node)

    def _eval_Constant(self, node: ast.Constant) -> object:
        return node.value

    def _eval_Name(self, node: ast.Name) -> object:
        if self.bindings and node.id in self.bindings[-1]:  # a parameter of the decoder being read
            return self.bindings[-1][node.id]
        if id(node) in self.local_names:
            raise NotStatic(node.id)
        if node.id in self.env:
            return self.env[node.id]
        if node.id in ("bytes", "str", "compile"):
            return ModuleRef(node.id)
        raise NotStatic(node.id)

    def _eval_Attribute(self, node: ast.Attribute) -> object:
        base = self.evaluate(node.value)
        if isinstance(base, ModuleRef):
            qualified = f"{base.name}.{node.attr}"
            if base.name == "lzma" and node.attr.isupper():
                return getattr(lzma, node.attr)
            return ModuleRef(qualified)
        if isinstance(base, (str, bytes)) and node.attr in STR_METHODS:
            return ("method", base, node.attr)
        if isinstance(base, DecompressorRef) and node.attr == "decompress":
            return ("decompressor", base)
        raise NotStatic(node.attr)

    def _eval_Lambda(self, node: ast.Lambda) -> object:
        function = inline_function(node)
        if function is None:
            raise NotStatic("lambda")
        return function

    def _eval_List(self, node: ast.List) -> object:
        return [self.evaluate(item) for item in node.elts]

    def _eval_Tuple(self, node: ast.Tuple) -> object:
        return tuple(self.evaluate(item) for item in node.elts)

    def _eval_Dict(self, node: ast.Dict) -> object:
        if any(key is None for key in node.keys):
            raise NotStatic("dict unpacking")
        return {self.evaluate(k): self.evaluate(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]

    def _eval_UnaryOp(self, node: ast.UnaryOp) -> object:
        operand = self.evaluate(node.operand)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and type(operand) is int:  # P[::-1]: the -1
            return -operand if isinstance(node.op, ast.USub) else operand
        raise NotStatic("unaryop")

    def _eval_BinOp(self, node: ast.BinOp) -> object:
        if isinstance(node.op, ast.Add):
            return self._concatenate(node)
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        if isinstance(node.op, ast.BitOr) and isinstance(left, int) and isinstance(right, int):
            return left | right
        raise NotStatic("binop")

    def _concatenate(self, node: ast.BinOp) -> object:
        """``'a' + 'b' + …`` without recursion: a long chain nests on the left, one level per ``+``."""
        operands: list[ast.expr] = [node.right]
        left: ast.expr = node.left
        while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Add):
            operands.append(left.right)
            left = left.left
        operands.append(left)
        values = [self.evaluate(operand) for operand in reversed(operands)]
        kind = type(values[0])
        if kind not in (str, bytes) or any(type(value) is not kind for value in values):
            raise NotStatic("binop")
        if sum(len(value) for value in values) > MAX_DECODED_BYTES:  # type: ignore[arg-type]
            raise PayloadTooLarge()
        return kind().join(values)  # type: ignore[arg-type]

    def _eval_Subscript(self, node: ast.Subscript) -> object:
        base = self.evaluate(node.value)
        if not isinstance(base, (str, bytes, list, tuple)):
            raise NotStatic("subscript")
        if isinstance(node.slice, ast.Slice):
            bounds = [
                None if part is None else self.evaluate(part)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return base[slice(*bounds)]
        return base[self.evaluate(node.slice)]  # type: ignore[index]

    def _eval_Call(self, node: ast.Call) -> object:
        func = self.evaluate(node.func)
        args = [self.evaluate(arg) for arg in node.args if not isinstance(arg, ast.Starred)]
        kwargs = {kw.arg: self.evaluate(kw.value) for kw in node.keywords if kw.arg is not None}
        if isinstance(func, tuple) and func[0] == "method":
            return self._call_method(func[1], func[2], args, kwargs)
        if isinstance(func, tuple) and func[0] == "decompressor":
            return self._decode(f"{func[1].codec}.decompress", args, dict(func[1].options))
        if isinstance(func, InlineFunction):
            return self._inline(func, args, kwargs)
        if not isinstance(func, ModuleRef):
            raise NotStatic("call")
        name = func.name
        if name == "compile":
            return CompiledRef(_text(args[0]), str(args[1]) if len(args) > 1 else "<string>")
        if name in ("zstandard.ZstdDecompressor", "zstd.ZstdDecompressor"):
            return DecompressorRef("zstandard")
        if name == "lzma.LZMADecompressor":
            return DecompressorRef("lzma", tuple(sorted(kwargs.items())))
        if name == "codecs.decode" and len(args) >= 2:
            return self._codecs_decode(args[0], str(args[1]))
        if name == "str" and len(args) >= 2:
            return _text(args[0], str(args[1]))
        return self._decode(name, args, kwargs)

    def _inline(self, function: InlineFunction, args: list[object], kwargs: dict[str, object]) -> object:
        """The value of the decoder's body with its parameters bound to the call's (already evaluated) arguments."""
        if len(self.bindings) >= MAX_INLINE_DEPTH:
            raise NotStatic("decoder calls nested too deep")
        if len(args) > len(function.params) or set(kwargs) - set(function.params[len(args) :]):
            raise NotStatic("arguments")
        bound = dict(zip(function.params, args)) | kwargs
        if len(bound) != len(function.params):
            raise NotStatic("arguments")
        self.bindings.append(bound)
        try:
            return _bounded(self.evaluate(function.body))
        finally:
            self.bindings.pop()

    def _decode(self, name: str, args: list[object], kwargs: dict[str, object]) -> object:
        decoder = DECODERS.get(name)
        if decoder is None:
            raise NotStatic(name)
        try:
            result = decoder(*args, **kwargs)
        except (NotStatic, DecodeFailure):
            raise
        except TypeError as exc:
            raise NotStatic(str(exc)) from exc
        except FAILURES as exc:
            raise DecodeFailure(f"{name}: {exc}") from exc
        short = name.split(".")[-1]
        self.codecs.append(CODEC_LABELS.get(short, name.split(".")[0]))
        return result

    def _codecs_decode(self, data: object, codec: str) -> object:
        aliases = {
            "base64": "base64.b64decode",
            "base_64": "base64.b64decode",
            "zlib": "zlib.decompress",
            "zip": "zlib.decompress",
            "hex": "binascii.unhexlify",
            "bz2": "bz2.decompress",
        }
        if codec.lower() in aliases:
            return self._decode(aliases[codec.lower()], [data], {})
        if isinstance(data, (bytes, bytearray)):
            return _text(data, codec)
        raise NotStatic(codec)

    def _call_method(self, base: str | bytes, method: str, args: list[object], kwargs: dict[str, object]) -> object:
        try:
            result = getattr(base, method)(*args, **kwargs)
        except UnicodeDecodeError as exc:
            raise DecodeFailure(f".decode(): payload is not valid text ({exc.reason})") from exc
        except (TypeError, ValueError, LookupError) as exc:
            raise NotStatic(str(exc)) from exc
        if method == "decode":
            self.codecs.append("text")
        return _bounded(result)


def _text(value: object, encoding: str = "utf-8") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode(encoding)
    raise NotStatic("text")


STATIC_FAILURES = (
    NotStatic,
    DecodeFailure,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    AttributeError,
    RecursionError,
    MemoryError,
)
CODE_SINKS = ("exec", "eval")  # run the code they are given
CODE_BUILDERS = (*CODE_SINKS, "compile")  # their first argument is code
SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def module_environment(tree: ast.Module) -> dict[str, object]:
    """Import aliases of decoding modules and module-level names bound only to literal-evaluable values.

    A name is known when every binding of it in module scope is a top-level ``NAME = literal`` or
    ``NAME += literal`` (evaluated in order), or a single top-level ``def`` that only returns an expression (an
    InlineFunction, as is ``NAME = lambda …``); a name bound any other way (a loop, a branch, ``global`` in a
    function, a call, a second ``def``) is unknown from then on, so a payload is never reconstructed from a guess.
    """
    env: dict[str, object] = {}
    evaluator = StaticEvaluator(env)
    decoders = _inline_decoders(tree)
    unknown = _names_bound_dynamically(tree, set(decoders))
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            _bind_imports(statement, env)
            continue
        if id(statement) in decoders and statement.name not in unknown:  # type: ignore[attr-defined]
            env[statement.name] = decoders[id(statement)]  # type: ignore[attr-defined]
            continue
        target, value = _simple_binding(statement)
        if target is None or target in unknown or value is None:
            if target is not None:
                env.pop(target, None)
            continue
        try:
            env[target] = evaluator.evaluate(value)
        except STATIC_FAILURES:
            env.pop(target, None)
            unknown.add(target)
    return env


def _inline_decoders(tree: ast.Module) -> dict[int, InlineFunction]:
    """Top-level ``def`` statements readable as InlineFunctions, by id of the statement; a name defined by
    more than one top-level ``def`` has none."""
    defs = [statement for statement in tree.body if isinstance(statement, ast.FunctionDef)]
    names = [statement.name for statement in defs]
    found = {}
    for statement in defs:
        function = inline_function(statement)
        if function is not None and names.count(statement.name) == 1:
            found[id(statement)] = function
    return found


def _bind_imports(statement: ast.Import | ast.ImportFrom, env: dict[str, object]) -> None:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            root = alias.name.split(".")[0]
            if root in SAFE_MODULES:
                env[alias.asname or root] = ModuleRef(alias.name if alias.asname else root)
    elif statement.module in SAFE_MODULES:
        for alias in statement.names:
            env[alias.asname or alias.name] = ModuleRef(f"{statement.module}.{alias.name}")


def _simple_binding(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """(name, value to evaluate) of ``NAME = expr`` / ``NAME += expr``; value None when it is not a literal form."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if not isinstance(target, ast.Name):
            return None, None
        literal = isinstance(statement.value, (ast.Constant, ast.BinOp, ast.Subscript, ast.Lambda))
        return target.id, statement.value if literal else None
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
        if not isinstance(statement.op, ast.Add):
            return statement.target.id, None
        name = statement.target.id
        return name, ast.BinOp(left=ast.Name(id=name, ctx=ast.Load()), op=ast.Add(), right=statement.value)
    return None, None


def _names_bound_dynamically(tree: ast.Module, inline_defs: set[int]) -> set[str]:
    """Module-scope names bound other than by a top-level single-target assignment or an inline decoder's
    ``def`` (ids in ``inline_defs``), or declared ``global``."""
    names = {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    simple = {id(target) for statement in tree.body for target in _simple_targets(statement)}
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, SCOPES):
                if not isinstance(child, ast.Lambda) and hasattr(child, "name") and id(child) not in inline_defs:
                    names.add(child.name)
                continue
            if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load) and id(child) not in simple:
                names.add(child.id)
            stack.append(child)
    return names


def _simple_targets(statement: ast.stmt) -> list[ast.expr]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        return statement.targets
    if isinstance(statement, ast.AugAssign):
        return [statement.target]
    return []


@dataclass(frozen=True)
class Payload:
    """A decoded literal found in a unit."""

    line: int
    value: object
    codecs: tuple[str, ...]
    literal: bool = False  # code written as a string in the file (exec("...")): its unit stays real source


def callee_name(call: ast.Call) -> str | None:
    """``exec`` for ``exec(...)`` and ``builtins.exec(...)``; None for other callees."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id in ("builtins", "__builtins__"):
            return func.attr
    return None


def code_argument(call: ast.Call) -> ast.expr | None:
    """The code an ``exec``/``eval``/``compile`` call is given."""
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return next((kw.value for kw in call.keywords if kw.arg in ("source", "object")), None)


@dataclass
class UnitScan:
    """What one unit hands to ``exec``: decoded payloads, and problems (corrupt payloads, unchecked code)."""

    payloads: list[Payload] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)


def scan_unit(tree: ast.Module, label: str) -> UnitScan:
    """Decoded literals that flow into exec/eval/compile, and every exec/eval whose code stays unknown.

    Decodes that never reach code (a data blob, ``"é".encode().decode("ascii")`` in a try block) are not
    wrappers and are ignored, whether they succeed or fail.
    """
    scan = UnitScan()
    env = module_environment(tree)
    flow = ValueFlow(tree)
    evaluator = partial(StaticEvaluator, env, flow.scopes.local_names())  # a fresh one per expression
    sinks = [
        call
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and callee_name(call) in CODE_BUILDERS and code_argument(call) is not None
    ]
    reach = {id(sink): flow.flows_into(code_argument(sink)) for sink in sinks}  # type: ignore[arg-type]
    into_code = set().union(*reach.values()) if reach else set()
    decoded = _decoded_literals(tree, evaluator, into_code, label, scan)
    for sink in sinks:
        if callee_name(sink) not in CODE_SINKS or decoded & reach[id(sink)]:
            continue
        literal = _literal_code(sink, evaluator())
        if literal is None:
            scan.problems.append(_unchecked_code(sink, label))
        else:
            scan.payloads.append(Payload(sink.lineno, literal, (f"{callee_name(sink)}'d literal",), literal=True))
    return scan


def _literal_code(sink: ast.Call, evaluator: StaticEvaluator) -> object | None:
    """The code an exec/eval runs when it is written out in the file (a string, or compile() of one), so that
    the rules check it like any other unit (a leak inside ``exec("...")`` is still a leak); None if unknown."""
    try:
        value = evaluator.evaluate(code_argument(sink))  # type: ignore[arg-type]
    except STATIC_FAILURES:
        return None
    return value if isinstance(value, (str, bytes, CompiledRef)) else None


def _decoded_literals(
    tree: ast.Module, new_evaluator: Callable[[], StaticEvaluator], into_code: set[int], label: str, scan: UnitScan
) -> set[int]:
    """Evaluate every maximal decode call that reaches code; returns the ids of the calls decoded (or failed)."""
    covered: set[int] = set()
    decoded: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in covered or not isinstance(node, ast.Call) or id(node) not in into_code:
            continue
        evaluator = new_evaluator()
        try:
            value = evaluator.evaluate(node)
        except DecodeFailure as exc:
            scan.problems.append(_corrupt_payload(exc, label, node.lineno))
        except STATIC_FAILURES:
            continue
        else:
            if not evaluator.codecs or evaluator.codecs == ["text"]:
                continue
            scan.payloads.append(Payload(node.lineno, value, tuple(evaluator.codecs)))
        covered.update(id(child) for child in ast.walk(node))
        decoded.add(id(node))
    return decoded


def _corrupt_payload(exc: DecodeFailure, label: str, line: int) -> Finding:
    if isinstance(exc, PayloadTooLarge):
        message = f"wrapper payload too large to check: {exc}; left unchecked"
    else:
        message = f"unreadable or truncated wrapper payload: {exc}"
    return Finding(INPUT_RULE, Severity.FAIL, message, label, line)


def _unchecked_code(sink: ast.Call, label: str) -> Finding:
    name = callee_name(sink)
    return Finding(
        INPUT_RULE,
        Severity.WARN,
        f"{name}'d code not checked: the code passed to {name}() cannot be decoded statically",
        label,
        sink.lineno,
    )


def payload_texts(value: object, default_name: str) -> list[tuple[str, str]]:
    """(name, source) pairs inside a decoded value: sections, a compiled text, or one plain text."""
    if isinstance(value, CompiledRef):
        return [(value.filename.strip("<>") or default_name, value.source)]
    if isinstance(value, (list, tuple)):
        pairs: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            pairs.extend(payload_texts(item, f"{default_name}{index}"))
        return pairs
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8-sig")
        except UnicodeDecodeError:
            return []
    if not isinstance(value, str):
        return []
    if SECTION_SEPARATOR in value or (NAME_SEPARATOR in value and "\n" in value.split(NAME_SEPARATOR, 1)[1]):
        return (
            payload_texts(value.split(SECTION_SEPARATOR), default_name)
            if SECTION_SEPARATOR in value
            else [_section(value, default_name)]
        )
    if NAME_SEPARATOR in value:
        return [_section(value, default_name)]
    return [(default_name, value)]


def _section(text: str, default_name: str) -> tuple[str, str]:
    name, _, source = text.partition(NAME_SEPARATOR)
    return (name.strip() or default_name, source)


def unwrap_script(path: Path) -> Unwrapped:
    """Read ``path`` and peel every wrapper layer; problems are collected, never raised.

    Raises ``OSError`` (``NotARegularFile``, ``FileTooLarge`` …) when the file itself cannot be read.
    """
    raw = read_limited(path)
    result = Unwrapped(path=path, shipped_bytes=len(raw))
    label = path.name
    try:
        text = raw.decode("utf-8-sig")  # Python itself accepts (and skips) a UTF-8 BOM
    except UnicodeDecodeError as exc:
        result.problems.append(Finding(INPUT_RULE, Severity.FAIL, f"not UTF-8 text ({exc.reason})", label, None))
        return result
    _peel(SourceUnit(label, text, 0), result)
    return result


def parse_source(text: str, label: str) -> tuple[ast.Module | None, Finding | None]:
    """The module and a note, or no module and why.

    A text this Python cannot parse is never judged a rule break: it is an INPUT WARN saying what was left
    unchecked and, for PEP 701 f-strings when the rewrite in :mod:`golfc.audit.parsing` fails, that the
    script needs Python 3.12.
    """
    try:
        parsed = parse_python(text, label)
    except SyntaxError as exc:
        return None, _unparsed(label, exc.lineno, _syntax_reason(exc, text))
    except ValueError as exc:  # null bytes
        return None, _unparsed(label, None, f"does not compile: {exc}")
    except (RecursionError, MemoryError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
        # no Python compiles it either: a script that cannot run, and one built to be left unchecked
        return None, Finding(
            INPUT_RULE, Severity.FAIL, f"does not compile: {reason} to parse; left unchecked", label, None
        )
    note = None if parsed.note is None else Finding(INPUT_RULE, Severity.INFO, parsed.note, label, None)
    return parsed.tree, note


def _syntax_reason(exc: SyntaxError, text: str) -> str:
    if needs_newer_python(exc, text):
        return f"needs Python 3.12 (PEP 701 f-string: {exc.msg}); Python {running_python()} cannot parse it"
    return f"does not compile on Python {running_python()}: {exc.msg}"


def _unparsed(label: str, line: int | None, reason: str) -> Finding:
    return Finding(
        INPUT_RULE, Severity.WARN, f"{reason}; its static legality checks (L1-L21) were not run", label, line
    )


def _peel(unit: SourceUnit, result: Unwrapped) -> None:
    tree, note = parse_source(unit.text, unit.label)
    if note is not None:
        result.problems.append(note)
    if tree is None:
        result.units.append(unit)
        return
    try:
        scan = scan_unit(tree, unit.label)
    except (RecursionError, MemoryError):
        scan = UnitScan(problems=[_too_complex(unit.label)])
    result.problems.extend(scan.problems)
    if unit.depth >= MAX_LAYERS and scan.payloads:
        result.problems.append(_too_deep(unit.label, scan.payloads[0].line))
        result.units.append(replace(unit, is_leaf=False))
        return
    inner = _inner_units(unit, scan.payloads, result)
    wraps = any(not payload.literal for payload in scan.payloads)  # a literal exec leaves the unit real source
    result.units.append(replace(unit, is_leaf=not (inner and wraps)))
    for child in inner:
        _peel(child, result)


def _inner_units(unit: SourceUnit, payloads: list[Payload], result: Unwrapped) -> list[SourceUnit]:
    """One unit per source text found in the payloads; a payload that is no text at all is a problem."""
    inner: list[SourceUnit] = []
    for payload in payloads:
        texts = payload_texts(payload.value, "payload")
        if not texts:
            result.problems.append(
                Finding(
                    INPUT_RULE,
                    Severity.WARN,
                    "a decoded literal is not Python source; left unchecked",
                    unit.label,
                    payload.line,
                )
            )
        for name, source in texts:
            inner.append(SourceUnit(f"{unit.label}[{name}]", source, unit.depth + 1, in_parent_text=payload.literal))
            result.layers.append(f"{unit.label}:{payload.line}: {' → '.join(payload.codecs)} → [{name}]")
    return inner


def _too_deep(label: str, line: int) -> Finding:
    return Finding(
        INPUT_RULE,
        Severity.FAIL,
        f"more than {MAX_LAYERS} nested wrapper layers: the payload decoded here was left unchecked",
        label,
        line,
    )


def _too_complex(label: str) -> Finding:
    return Finding(
        INPUT_RULE, Severity.FAIL, "code nested too deeply to analyse; wrapper payloads left unchecked", label, None
    )
