"""Read the real source behind a self-extracting ``train_gpt.py`` without running any of it.

A wrapper carries its program as a literal (base85/base64 text, bytes) passed through a chain of decode
calls (``lzma.decompress``, ``b85decode``, ``zlib.decompress``, ``brotli.decompress``, ``.decode()``,
``.split('\\0')`` …) and handed to ``exec``. This module evaluates such chains *statically*: it walks the
wrapper's AST, resolves module-level names and import aliases, and applies only a whitelist of pure
decoding functions to literal data. Nothing the submission defines is ever called. A decoded text that
is itself a wrapper is peeled again (nested exec layers); a payload of ``name\\x01source`` parts joined by
``\\x00`` (golfc's layout) becomes one source unit per section.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from golfc.audit.findings import INPUT_RULE, Finding, Severity

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
        return sum(len(unit.text.encode("utf-8")) for unit in self.units if unit.is_leaf)

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


def _capped(data: bytes) -> bytes:
    if len(data) > MAX_DECODED_BYTES:
        raise DecodeFailure(f"decoded payload exceeds {MAX_DECODED_BYTES} bytes")
    return data


def _lzma_decompress(
    data: bytes,
    format: int = lzma.FORMAT_AUTO,
    memlimit: int | None = None,
    filters: list[dict[str, object]] | None = None,
) -> bytes:
    decompressor = lzma.LZMADecompressor(format=format, memlimit=memlimit, filters=filters)
    out = decompressor.decompress(_as_bytes(data), max_length=MAX_DECODED_BYTES + 1)
    if not decompressor.eof and format != lzma.FORMAT_RAW:
        raise DecodeFailure("lzma: compressed data ended before the end-of-stream marker was reached")
    if format == lzma.FORMAT_RAW and not decompressor.eof and decompressor.needs_input:
        raise DecodeFailure("lzma: raw stream ended before its end marker (truncated payload)")
    return _capped(out)


def _zlib_decompress(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(_as_bytes(data), MAX_DECODED_BYTES + 1)
    if not decompressor.eof:
        raise DecodeFailure("zlib: incomplete or truncated stream")
    return _capped(out)


def _brotli_decompress(data: bytes) -> bytes:
    import brotli

    return _capped(brotli.decompress(_as_bytes(data)))


def _zstd_decompress(data: bytes, max_output_size: int = 0) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(_as_bytes(data))
    return _capped(reader.read(MAX_DECODED_BYTES + 1))


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
    "gzip.decompress": lambda data: _capped(gzip.decompress(_as_bytes(data))),
    "bz2.decompress": lambda data: _capped(bz2.decompress(_as_bytes(data))),
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
    """Evaluates literal expressions and whitelisted decode calls of one module; records the codecs used."""

    def __init__(self, env: dict[str, object]) -> None:
        self.env = env
        self.codecs: list[str] = []

    def evaluate(self, node: ast.expr) -> object:
        handler = getattr(self, f"_eval_{type(node).__name__}", None)
        if handler is None:
            raise NotStatic(type(node).__name__)
        return handler(node)

    def _eval_Constant(self, node: ast.Constant) -> object:
        return node.value

    def _eval_Name(self, node: ast.Name) -> object:
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

    def _eval_List(self, node: ast.List) -> object:
        return [self.evaluate(item) for item in node.elts]

    def _eval_Tuple(self, node: ast.Tuple) -> object:
        return tuple(self.evaluate(item) for item in node.elts)

    def _eval_Dict(self, node: ast.Dict) -> object:
        if any(key is None for key in node.keys):
            raise NotStatic("dict unpacking")
        return {self.evaluate(k): self.evaluate(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]

    def _eval_BinOp(self, node: ast.BinOp) -> object:
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (str, bytes)):
            return left + right  # type: ignore[operator]
        if isinstance(node.op, ast.BitOr) and isinstance(left, int) and isinstance(right, int):
            return left | right
        raise NotStatic("binop")

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
        return result


def _text(value: object, encoding: str = "utf-8") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode(encoding)
    raise NotStatic("text")


def module_environment(tree: ast.Module) -> dict[str, object]:
    """Import aliases of decoding modules and module-level names bound to literal-evaluable values."""
    env: dict[str, object] = {}
    evaluator = StaticEvaluator(env)
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                root = alias.name.split(".")[0]
                if root in SAFE_MODULES:
                    env[alias.asname or root] = ModuleRef(alias.name if alias.asname else root)
        elif isinstance(statement, ast.ImportFrom) and statement.module in SAFE_MODULES:
            for alias in statement.names:
                env[alias.asname or alias.name] = ModuleRef(f"{statement.module}.{alias.name}")
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name) and isinstance(statement.value, (ast.Constant, ast.BinOp, ast.JoinedStr)):
                try:
                    env[target.id] = evaluator.evaluate(statement.value)
                except (NotStatic, DecodeFailure, KeyError, IndexError, TypeError):
                    env.pop(target.id, None)
    return env


@dataclass(frozen=True)
class Payload:
    """A decoded literal found in a unit."""

    line: int
    value: object
    codecs: tuple[str, ...]


def find_payloads(tree: ast.Module, label: str, problems: list[Finding]) -> list[Payload]:
    """Every maximal call expression that decodes a literal; decode errors become problems."""
    env = module_environment(tree)
    covered: set[int] = set()
    payloads: list[Payload] = []
    for node in ast.walk(tree):
        if id(node) in covered or not isinstance(node, ast.Call):
            continue
        evaluator = StaticEvaluator(env)
        try:
            value = evaluator.evaluate(node)
        except NotStatic:
            continue
        except DecodeFailure as exc:
            problems.append(
                Finding(
                    INPUT_RULE, Severity.FAIL, f"unreadable or truncated wrapper payload: {exc}", label, node.lineno
                )
            )
            covered.update(id(child) for child in ast.walk(node))
            continue
        except (KeyError, IndexError, TypeError, AttributeError, RecursionError):
            continue
        if not evaluator.codecs or evaluator.codecs == ["text"]:
            continue
        covered.update(id(child) for child in ast.walk(node))
        payloads.append(Payload(node.lineno, value, tuple(evaluator.codecs)))
    return payloads


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
            value = bytes(value).decode("utf-8")
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
    """Read ``path`` and peel every wrapper layer; problems are collected, never raised."""
    raw = path.read_bytes()
    result = Unwrapped(path=path, shipped_bytes=len(raw))
    label = path.name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.problems.append(Finding(INPUT_RULE, Severity.FAIL, f"not UTF-8 text ({exc.reason})", label, None))
        return result
    _peel(SourceUnit(label, text, 0), result)
    return result


def _peel(unit: SourceUnit, result: Unwrapped) -> None:
    try:
        tree = ast.parse(unit.text, filename=unit.label)
    except SyntaxError as exc:
        result.problems.append(
            Finding(INPUT_RULE, Severity.FAIL, f"does not compile: {exc.msg}", unit.label, exc.lineno)
        )
        result.units.append(unit)
        return
    payloads = find_payloads(tree, unit.label, result.problems) if unit.depth < MAX_LAYERS else []
    inner: list[SourceUnit] = []
    for payload in payloads:
        texts = [(name, source) for name, source in payload_texts(payload.value, "payload") if _is_python(source)]
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
            inner.append(SourceUnit(f"{unit.label}[{name}]", source, unit.depth + 1))
            result.layers.append(f"{unit.label}:{payload.line}: {' → '.join(payload.codecs)} → [{name}]")
    result.units.append(SourceUnit(unit.label, unit.text, unit.depth, is_leaf=not inner))
    for child in inner:
        _peel(child, result)


def _is_python(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return bool(source.strip())
