"""Word-level recognisers for identifiers: validation data, targets, losses, distributions, phases."""

from __future__ import annotations

import ast
import re

VAL_WORDS = {"val", "valid", "validation", "heldout"}
DATA_WORDS = {
    "tokens",
    "token",
    "toks",
    "tok",
    "data",
    "ids",
    "seq",
    "seqs",
    "x",
    "y",
    "loader",
    "stream",
    "files",
    "file",
    "shard",
    "shards",
    "chunk",
    "chunks",
    "inputs",
    "input",
    "targets",
    "target",
    "docs",
    "doc",
    "set",
    "split",
    "windows",
    "window",
    "batch",
    "buf",
    "buffer",
    "text",
}
NOT_DATA_WORDS = {
    "loss",
    "losses",
    "bpb",
    "nll",
    "every",
    "size",
    "len",
    "length",
    "stride",
    "steps",
    "frac",
    "fraction",
    "lr",
    "count",
    "num",
    "bytes",
    "time",
    "ms",
    "sum",
    "mean",
    "std",
    "fn",
    "func",
    "path",
    "dir",
    "pattern",
    "enabled",
    "interval",
}
TARGET_WORDS = {
    "y",
    "target",
    "targets",
    "tgt",
    "tgts",
    "label",
    "labels",
    "gold",
    "golden",
    "truth",
    "realized",
    "actual",
    "next",
    "nxt",
}
NOT_TARGET_WORDS = {"loss", "losses", "nll", "mask", "lr", "size", "len", "count", "dim", "shape", "enabled"}
LOSS_WORDS = {
    "loss",
    "losses",
    "nll",
    "nlls",
    "ce",
    "logp",
    "logprob",
    "logprobs",
    "lp",
    "bpb",
    "logits",
    "logit",
    "surprisal",
    "xent",
}
LOSS_CALLS = {
    "cross_entropy",
    "nll_loss",
    "log_softmax",
    "softmax",
    "logsumexp",
    "forward_logits",
    "forward",
    "loss_fn",
    "compute_loss",
    "score_tokens",
}
DISTRIBUTION_WORDS = {
    "logits",
    "logit",
    "probs",
    "prob",
    "p",
    "logp",
    "logprobs",
    "lp",
    "tilt",
    "boost",
    "mix",
    "mixture",
    "ngram",
    "expert",
    "experts",
    "bias",
    "scores",
    "dist",
    "q",
}
BPB_TABLE_WORDS = {"bytes", "byte", "space", "boundary", "base", "sidecar"}
SCORE_ACCUMULATOR_WORDS = {"nll", "bpb", "bits", "score", "scores", "scored"}
QUANT_WORDS = {"quantize", "quant", "quantized", "gptq", "serialize", "compress", "export", "save", "pack"}
CALIBRATION_WORDS = {"gptq", "hessian", "hessians", "calib", "calibrate", "calibration"}
WARMUP_WORDS = {"warmup", "warm", "compile", "precompile"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(identifier: str) -> set[str]:
    """``valTokens`` / ``VAL_TOKENS`` / ``val_tokens`` → {"val", "tokens"}."""
    return {part for part in _CAMEL.sub("_", identifier).lower().split("_") if part}


def is_val_source(identifier: str) -> bool:
    parts = words(identifier.split(".")[-1])
    return bool(parts & VAL_WORDS) and bool(parts & DATA_WORDS) and not parts & NOT_DATA_WORDS


def is_target_name(identifier: str) -> bool:
    parts = words(identifier.split(".")[-1])
    return bool(parts & TARGET_WORDS) and not parts & NOT_TARGET_WORDS


def has_words(identifier: str, vocabulary: set[str]) -> bool:
    return bool(words(identifier) & vocabulary)


def identifiers(node: ast.AST) -> list[str]:
    """Every Name id and Attribute attr under ``node``."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.append(child.id)
        elif isinstance(child, ast.Attribute):
            found.append(child.attr)
    return found


def call_name(node: ast.Call) -> str | None:
    """``f(...)`` → "f"; ``a.b.f(...)`` → "f"."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def dotted(node: ast.AST) -> str | None:
    """``self.delta`` → "self.delta"; None for anything but a chain of names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def is_lossy(node: ast.AST) -> bool:
    """The expression computes or carries a loss / log-probability."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and call_name(child) in LOSS_CALLS:
            return True
        name = child.id if isinstance(child, ast.Name) else child.attr if isinstance(child, ast.Attribute) else None
        if name is not None and words(name) & LOSS_WORDS:
            return True
    return False


def is_val_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and is_val_path(node.value)


def is_val_path(text: str) -> bool:
    """``./data/fineweb_val_*.bin`` and the like: a path (or glob) to the validation shards."""
    return "fineweb_val" in text or ("_val_" in text and ".bin" in text)
