"""Parse Parameter Golf training logs: console captures and ``logs/<RUN_ID>.txt`` files.

Covers the baseline's lines (``step:…``, ``Serialized model int8+zlib: N bytes``,
``final_int8_zlib_roundtrip_exact val_loss:… val_bpb:…``) and the later families: ``final_int6_*``,
``final_sliding_window_exact``, ``legal_ttt_exact``, ``quantized_*``, ``quantized_ttt_phased``, the
``Hyperparameters:`` block, ``Code size (compressed)``, ``total_eval_time``. A log file may begin with the
script's source; that part is skipped. The score of a run is the last ``val_bpb`` printed by an evaluation
of the final model; a log that printed none has no score (nothing is guessed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from golfc.audit.config import parse_log_value

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
VAL_BPB = re.compile(rf"\bval_bpb[:=]\s*({NUMBER})")
VAL_LOSS = re.compile(rf"\bval_loss[:=]\s*({NUMBER})")
EVAL_TIME = re.compile(rf"\beval_time[:=]\s*({NUMBER})\s*(ms|s)\b")
STEP_LINE = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\s")
STOPPING = re.compile(rf"^stopping_early:.*?train_time:\s*({NUMBER})ms.*?step:\s*(\d+)/(\d+)")
TRAIN_TIME_MS = re.compile(rf"\btrain_time:\s*({NUMBER})ms")
STEP_AVG = re.compile(rf"\bstep_avg:\s*({NUMBER})ms")
SERIALIZED = re.compile(r"^Serialized model (\S[^:]*):\s*(\d+) bytes")
TOTAL = re.compile(r"^Total submission size(?: ([^:]+))?:\s*(\d+) bytes")
CODE_SIZE = re.compile(r"^Code size(?: \((compressed|uncompressed)\))?:\s*(\d+) bytes")
TOTAL_EVAL = re.compile(rf"^total_eval_time:\s*({NUMBER})s")
VAL_TOKENS = re.compile(r"^(?:val_tokens:\s*(\d+)|val_loader:.*\btokens:(\d+))")
SEED_LINE = re.compile(r"^seed:\s*(\d+)\s*$")
SEED_FILENAME = re.compile(r"seed[_-]?(\d+)", re.IGNORECASE)
HESSIANS = re.compile(rf"^GPTQ:collected \d+ Hessians in ({NUMBER})s")
KEY_VALUE = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_]*): ?(.*)$")
INLINE_PAIRS = re.compile(r"^(?:[a-z_][a-z0-9_]*:\S+\s*)+$")
SEPARATOR = re.compile(r"^={20,}\s*$")
DIAGNOSTIC_PREFIXES = ("diagnostic", "pre-quantization", "DIAGNOSTIC", "pre_quant")
LOG_MARKERS = ("val_bpb", "train_loss", "Serialized model", "model_params", "Hyperparameters:", "warmup_step")
CODE_START = ("import ", "from ", '"""', "'''", "#!", "# ")


@dataclass
class RunLog:
    """What one log says about one run."""

    path: Path
    seed: int | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    score_label: str | None = None  # the line the score came from: "quantized_ttt_phased", …
    artifact_bytes: int | None = None  # compressed model (the "Serialized model <format>" line)
    artifact_label: str | None = None
    code_bytes: int | None = None  # as the log counted it (compressed, when both are printed)
    code_bytes_uncompressed: int | None = None
    total_bytes: int | None = None  # as the log counted it
    steps: int | None = None
    iterations: int | None = None
    step_avg_ms: float | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    hessian_time_s: float | None = None
    val_tokens: int | None = None
    hyperparameters: dict[str, object] = field(default_factory=dict)
    skipped_source_lines: int = 0

    @property
    def has_score(self) -> bool:
        return self.val_bpb is not None

    @property
    def nats_per_bpb(self) -> float | None:
        if self.val_bpb and self.val_loss:
            return self.val_loss / self.val_bpb
        return None


def looks_like_log(path: Path) -> bool:
    """A ``.log`` file, or a ``.txt`` that prints something a training log prints."""
    if path.suffix == ".log":
        return True
    if path.suffix != ".txt" or path.name.lower().startswith(("requirements", "readme", "license")):
        return False
    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(marker in head for marker in LOG_MARKERS)


def find_logs(folder: Path) -> list[Path]:
    """Log files in the folder and in its ``logs/`` subfolder, sorted by name."""
    candidates = [p for p in folder.iterdir() if p.is_file()]
    logs_dir = folder / "logs"
    if logs_dir.is_dir():
        candidates += [p for p in logs_dir.iterdir() if p.is_file()]
    return sorted((p for p in candidates if looks_like_log(p)), key=lambda p: str(p.relative_to(folder)))


def strip_source(lines: list[str]) -> tuple[list[str], int]:
    """Drop the script source a log file may begin with, and a ``Source code:`` block between separators."""
    kept: list[str] = []
    skipped = 0
    index = 0
    first = next((line for line in lines if line.strip()), "")
    if first.startswith(CODE_START):
        end = next((i for i, line in enumerate(lines) if SEPARATOR.match(line)), None)
        if end is not None:
            skipped, index = end + 1, end + 1
    while index < len(lines):
        line = lines[index]
        if line.strip() == "Source code:":
            start = index + 1
            if start < len(lines) and SEPARATOR.match(lines[start]):
                start += 1
            end = next((i for i in range(start, len(lines)) if SEPARATOR.match(lines[i])), len(lines))
            skipped += end - index
            index = end + 1
            continue
        kept.append(line)
        index += 1
    return kept, skipped


def parse_log(path: Path) -> RunLog:
    """Read one log; raises OSError / UnicodeDecodeError for an unreadable file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines, skipped = strip_source(text.splitlines())
    run = RunLog(path=path, skipped_source_lines=skipped)
    _parse_hyperparameters(lines, run)
    serialized_seen = False
    eval_sum_ms = 0.0
    for raw in lines:
        line = raw.rstrip()
        serialized_seen |= _parse_sizes(line, run)
        _parse_training(line, run)
        if VAL_BPB.search(line) and not _is_training_eval(line):
            eval_sum_ms += _parse_score(line, run, serialized_seen)
        _parse_misc(line, run)
    if run.train_time_s is None:
        run.train_time_s = _last_step_train_time(lines)
    if run.eval_time_s is None and eval_sum_ms:
        run.eval_time_s = round(eval_sum_ms / 1000.0, 3)
    if run.step_avg_ms is None and run.train_time_s and run.steps:
        run.step_avg_ms = round(run.train_time_s * 1000.0 / run.steps, 2)
    if run.seed is None:
        match = SEED_FILENAME.search(path.name)
        run.seed = int(match.group(1)) if match else None
    return run


def _is_training_eval(line: str) -> bool:
    return bool(STEP_LINE.match(line)) or line.lstrip().startswith("sliding_eval")


def _parse_score(line: str, run: RunLog, after_serialization: bool) -> float:
    """Record the line's val_bpb as the score (unless diagnostic); return its eval time in ms if it counts."""
    label = line.split()[0].rstrip(":")
    if line.startswith(DIAGNOSTIC_PREFIXES):
        return 0.0
    bpb = VAL_BPB.search(line)
    loss = VAL_LOSS.search(line)
    if bpb is None:
        return 0.0
    run.val_bpb = float(bpb.group(1))
    run.val_loss = float(loss.group(1)) if loss else None
    run.score_label = label
    timing = EVAL_TIME.search(line)
    if timing is None or not after_serialization:
        return 0.0
    value = float(timing.group(1))
    return value if timing.group(2) == "ms" else value * 1000.0


def _parse_sizes(line: str, run: RunLog) -> bool:
    """Sizes; returns True when this line reports the serialized artifact."""
    match = SERIALIZED.match(line)
    if match:
        run.artifact_bytes, run.artifact_label = int(match.group(2)), match.group(1).strip()
        return True
    match = TOTAL.match(line)
    if match and (match.group(1) or run.total_bytes is None):
        run.total_bytes = int(match.group(2))
    match = CODE_SIZE.match(line)
    if match:
        if match.group(1) == "uncompressed":
            run.code_bytes_uncompressed = int(match.group(2))
        else:
            run.code_bytes = int(match.group(2))
    return False


def _parse_training(line: str, run: RunLog) -> None:
    match = STOPPING.match(line)
    if match:
        run.train_time_s = float(match.group(1)) / 1000.0
        run.steps, run.iterations = int(match.group(2)), int(match.group(3))
        return
    step = STEP_LINE.match(line)
    if step is None:
        return
    if run.train_time_s is None:
        run.steps, run.iterations = int(step.group(1)), int(step.group(2))
    average = STEP_AVG.search(line)
    if average:
        run.step_avg_ms = float(average.group(1))


def _last_step_train_time(lines: list[str]) -> float | None:
    for line in reversed(lines):
        if STEP_LINE.match(line):
            match = TRAIN_TIME_MS.search(line)
            if match:
                return float(match.group(1)) / 1000.0
    return None


def _parse_misc(line: str, run: RunLog) -> None:
    match = TOTAL_EVAL.match(line)
    if match:
        run.eval_time_s = float(match.group(1))
    match = VAL_TOKENS.match(line)
    if match:
        run.val_tokens = int(match.group(1) or match.group(2))
    match = SEED_LINE.match(line)
    if match and run.seed is None:
        run.seed = int(match.group(1))
    match = HESSIANS.match(line)
    if match:
        run.hessian_time_s = float(match.group(1))
    if INLINE_PAIRS.match(line) and not STEP_LINE.match(line):
        for pair in line.split():
            key, _, value = pair.partition(":")
            run.hyperparameters.setdefault(key, parse_log_value(value))


def _parse_hyperparameters(lines: list[str], run: RunLog) -> None:
    """The indented ``name: value`` block after a ``Hyperparameters:`` header."""
    inside = False
    for line in lines:
        if line.strip() == "Hyperparameters:":
            inside = True
            continue
        if not inside:
            continue
        match = KEY_VALUE.match(line)
        if match is None:
            if line.strip():
                inside = False
            continue
        run.hyperparameters[match.group(1)] = parse_log_value(match.group(2))
    seed = run.hyperparameters.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        run.seed = seed
