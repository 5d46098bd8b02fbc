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
from golfc.audit.reading import read_head, read_text_limited

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
VAL_BPB = re.compile(rf"\bval_bpb[:=]\s*({NUMBER})")
VAL_LOSS = re.compile(rf"\bval_loss[:=]\s*({NUMBER})")
EVAL_TIME = re.compile(rf"\beval_time[:=]\s*({NUMBER})\s*(ms|s)\b")
STEP_LINE = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\s")
STOPPING_PREFIX = "stopping_early:"
STOP_STEP = re.compile(r"step:\s*(\d+)/(\d+)")
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
INLINE_PAIR = re.compile(r"[a-z_][a-z0-9_]*:\S+")  # one ``key:value`` token of a hyperparameter line
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# torchrun's ``--tee`` header ``[default0]:`` (or ``[0]:``) is glued to the line, which may be indented; PyTorch's
# exception hook writes ``[rank1]: ``.
RANK_PREFIX = re.compile(r"^(?:\[(?:default)?\d+\]:|\[rank\d+\]: ?)")
# A label on every line of a labelled log: ``srun --label`` writes ``0: ``, `` 3: `` (padded) or ``0:`` alone;
# MPICH's ``-prepend-rank`` and Intel MPI's ``-l`` write ``[0] ``.
RANK_LABEL = re.compile(r"[ \t]*\d{1,4}:(?: |$)|\[\d{1,4}\] ")
MPI_TAG = re.compile(r"\[\d+,\d+\]<std(?:out|err)>:")  # Open MPI's ``--tag-output``: ``[1,0]<stdout>:``
TRACKED_FIELDS = (
    "seed",
    "val_bpb",
    "artifact_bytes",
    "total_bytes",
    "code_bytes",
    "steps",
    "train_time_s",
    "eval_time_s",
    "hessian_time_s",
    "val_tokens",
)
SEPARATOR = re.compile(r"^={20,}\s*$")
DIAGNOSTIC_PREFIXES = ("diagnostic", "pre-quantization", "DIAGNOSTIC", "pre_quant")
LOG_MARKERS = ("val_bpb", "train_loss", "Serialized model", "model_params", "Hyperparameters:", "warmup_step")
CODE_START = ("import ", "from ", '"""', "'''", "#!", "# ")


@dataclass(frozen=True)
class Score:
    """One ``val_bpb`` line of a final-model evaluation (``final_int8_zlib_roundtrip_exact``, ``legal_ttt_exact``…)."""

    label: str
    val_bpb: float
    val_loss: float | None
    line: int | None


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
    lines: dict[str, int] = field(default_factory=dict)  # field name -> line of the log it was read from
    scores: list[Score] = field(default_factory=list)  # every final-model score line, in log order
    claimed: bool = False  # the score is the one submission.json claims for this seed (crosscheck.select_primary)
    # the run's own output lines (no source copied into the log), each after "\n": evidence of which code ran
    printed: str = field(default="", repr=False, compare=False)

    def use_score(self, score: Score) -> None:
        """Make ``score`` (one of ``scores``) the run's score: the one its submission claims, say."""
        self.val_bpb, self.val_loss, self.score_label = score.val_bpb, score.val_loss, score.label
        if score.line is not None:
            self.lines["val_bpb"] = score.line

    @property
    def other_scores(self) -> list[Score]:
        """Score lines other than the one the run is scored by."""
        return [
            s
            for s in self.scores
            if (s.label, s.val_bpb, s.val_loss) != (self.score_label, self.val_bpb, self.val_loss)
        ]

    def line_of(self, name: str) -> int | None:
        return self.lines.get(name)

    @property
    def has_score(self) -> bool:
        return self.val_bpb is not None

    @property
    def nats_per_bpb(self) -> float | None:
        if self.val_bpb and self.val_loss:
            return self.val_loss / self.val_bpb
        return None


def looks_like_log(path: Path) -> bool:
    """A ``.log`` file, or a ``.txt`` that prints something a training log prints.

    A ``.txt`` that cannot be read counts as a log, so that reading it fails and is reported.
    """
    if path.suffix == ".log":
        return True
    if path.suffix != ".txt" or path.name.lower().startswith(("requirements", "readme", "license")):
        return False
    try:
        head = read_head(path)
    except OSError:
        return True
    return any(marker in head for marker in LOG_MARKERS)


def find_logs(folder: Path) -> list[Path]:
    """Log files in the folder and in its ``logs/`` subfolder, sorted by name.

    A log that is no regular file (a FIFO, a link to a device) is listed, so that reading it fails and is
    reported. Raises OSError when a folder cannot be listed.
    """
    candidates = [p for p in folder.iterdir() if not p.is_dir()]
    logs_dir = folder / "logs"
    if logs_dir.is_dir():
        candidates += [p for p in logs_dir.iterdir() if not p.is_dir()]
    return sorted((p for p in candidates if looks_like_log(p)), key=lambda p: str(p.relative_to(folder)))


def clean_line(line: str) -> str:
    """A console line without colour codes and without a torchrun rank prefix, right-stripped."""
    if "\x1b" in line:
        line = ANSI_ESCAPE.sub("", line)
    if line.startswith("["):
        line = RANK_PREFIX.sub("", line, count=1)
    return line.rstrip()


def clean_lines(lines: list[str]) -> list[str]:
    """Console lines cleaned one by one (:func:`clean_line`), without Open MPI's output tags
    (:func:`strip_mpi_tags`), then without their rank labels when the log is labelled
    (:func:`has_rank_labels`). Same number of lines, so line numbers still hold."""
    cleaned = strip_mpi_tags([clean_line(line) for line in lines])
    if not has_rank_labels(cleaned):
        return cleaned
    return [clean_line(line[label.end() :]) if (label := RANK_LABEL.match(line)) else line for line in cleaned]


def strip_mpi_tags(lines: list[str]) -> list[str]:
    """Lines without the ``[job,rank]<stdout>:`` tag of ``mpirun --tag-output``. Open MPI 4 glues the tag to the
    line (``[1,0]<stdout>:  seed: 42`` is the block line ``  seed: 42``); later versions put one space after it.
    The space is taken as part of the tag only when every tagged line with text has one, so that the
    indentation of a glued log survives."""
    tags = [(i, tag.end()) for i, line in enumerate(lines) if (tag := MPI_TAG.match(line))]
    if not tags:
        return lines
    texts = [lines[i][end:] for i, end in tags if lines[i][end:]]
    spaced = bool(texts) and all(text.startswith(" ") for text in texts)
    cleaned = list(lines)
    for i, end in tags:
        rest = lines[i][end:]
        cleaned[i] = clean_line(rest[1:] if spaced and rest.startswith(" ") else rest)
    return cleaned


def has_rank_labels(lines: list[str]) -> bool:
    """More than half of the non-empty lines begin with a rank label, ``<rank>: `` (``srun -l`` and some
    launchers put one on every line the job prints; a few lines of the batch script may have none).

    A label is stripped only from a labelled log: a line of an ordinary log that happens to begin with
    ``3: `` (a listing, a table) keeps it. A time of day (``12:30:01 ``) is no label: no space after the colon.
    """
    non_empty = labelled = 0
    for line in lines:
        if line.strip():
            non_empty += 1
            labelled += RANK_LABEL.match(line) is not None
    return labelled * 2 > non_empty


def strip_source(lines: list[str]) -> tuple[list[int], int]:
    """Indices of the lines to parse: without the script source a log file may begin with, and without a
    ``Source code:`` block between separators; and how many lines were skipped."""
    kept: list[int] = []
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
        kept.append(index)
        index += 1
    return kept, skipped


def parse_log(path: Path) -> RunLog:
    """Read one log; raises OSError for an unreadable file (or one that is not a regular file, or too large)."""
    all_lines = clean_lines(read_text_limited(path).splitlines())
    kept, skipped = strip_source(all_lines)
    lines = [all_lines[i] for i in kept]
    numbers = [i + 1 for i in kept]
    run = RunLog(path=path, skipped_source_lines=skipped)
    run.printed = "".join("\n" + line.strip() for line in lines)
    _parse_hyperparameters(lines, numbers, run)
    serialized_seen = False
    eval_sum_ms = 0.0
    for number, line in zip(numbers, lines):
        before = [getattr(run, name) for name in TRACKED_FIELDS]
        serialized_seen |= _parse_sizes(line, run)
        _parse_training(line, run)
        if VAL_BPB.search(line) and not _is_training_eval(line):
            counted = _parse_score(line, run, serialized_seen, number)
            if counted:
                eval_sum_ms += counted
                run.lines["eval_sum"] = number
        _parse_misc(line, run)
        for name, old in zip(TRACKED_FIELDS, before):
            if getattr(run, name) != old:
                run.lines[name] = number
    _fill_derived(run, lines, numbers, eval_sum_ms)
    return run


def _fill_derived(run: RunLog, lines: list[str], numbers: list[int], eval_sum_ms: float) -> None:
    """Figures a log implies without printing them: the train time of its last step, summed eval times, the seed
    in its file name."""
    if run.train_time_s is None:
        found = _last_step_train_time(lines)
        if found is not None:
            run.train_time_s, index = found
            run.lines["train_time_s"] = numbers[index]
    if run.eval_time_s is None and eval_sum_ms:
        run.eval_time_s = round(eval_sum_ms / 1000.0, 3)
        run.lines["eval_time_s"] = run.lines["eval_sum"]
    if run.step_avg_ms is None and run.train_time_s and run.steps:
        run.step_avg_ms = round(run.train_time_s * 1000.0 / run.steps, 2)
    if run.seed is None:
        match = SEED_FILENAME.search(run.path.name)
        run.seed = int(match.group(1)) if match else None


def _is_training_eval(line: str) -> bool:
    return bool(STEP_LINE.match(line)) or line.lstrip().startswith("sliding_eval")


def _parse_score(line: str, run: RunLog, after_serialization: bool, number: int | None = None) -> float:
    """Record the line's val_bpb as the score (unless diagnostic) and among ``run.scores``; return its eval time
    in ms if it counts."""
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
    run.scores.append(Score(label, run.val_bpb, run.val_loss, number))
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
    stopped = _stopping_early(line)
    if stopped is not None:
        run.train_time_s, run.steps, run.iterations = stopped
        return
    step = STEP_LINE.match(line)
    if step is None:
        return
    if run.train_time_s is None:
        run.steps, run.iterations = int(step.group(1)), int(step.group(2))
    average = STEP_AVG.search(line)
    if average:
        run.step_avg_ms = float(average.group(1))


def _stopping_early(line: str) -> tuple[float, int, int] | None:
    """(train seconds, step, iterations) of ``stopping_early: … train_time:Nms … step:S/T``.

    Two plain searches instead of one pattern with two lazy gaps, which is quadratic on a long line.
    """
    if not line.startswith(STOPPING_PREFIX):
        return None
    time = TRAIN_TIME_MS.search(line, len(STOPPING_PREFIX))
    step = STOP_STEP.search(line, time.end()) if time else None
    if time is None or step is None:
        return None
    return float(time.group(1)) / 1000.0, int(step.group(1)), int(step.group(2))


def _last_step_train_time(lines: list[str]) -> tuple[float, int] | None:
    """(seconds, index of the line) of the last step line that prints ``train_time``."""
    for index in range(len(lines) - 1, -1, -1):
        if STEP_LINE.match(lines[index]):
            match = TRAIN_TIME_MS.search(lines[index])
            if match:
                return float(match.group(1)) / 1000.0, index
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
    if is_inline_pairs(line) and not STEP_LINE.match(line):
        for pair in line.split():
            key, _, value = pair.partition(":")
            run.hyperparameters.setdefault(key, parse_log_value(value))


def is_inline_pairs(line: str) -> bool:
    """``key:value key:value …`` and nothing else (token by token: linear time on any line)."""
    tokens = line.split()
    return bool(tokens) and not line[0].isspace() and all(INLINE_PAIR.fullmatch(token) for token in tokens)


def _parse_hyperparameters(lines: list[str], numbers: list[int], run: RunLog) -> None:
    """The indented ``name: value`` block after a ``Hyperparameters:`` header."""
    inside = False
    for number, line in zip(numbers, lines):
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
        if match.group(1) == "seed":
            run.lines["seed"] = number
    seed = run.hyperparameters.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        run.seed = seed
