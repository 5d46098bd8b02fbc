"""The phase ledger of one run, read from its console lines as they arrive (each stamped with golfc's own wall
clock): set-up, compile warmup, timed training, serialization and each evaluation; plus the loss curves.

The markers are the reference script's lines, which golfc builds and most records keep: ``warmup_step:i/N``,
``step:S/N train_loss:…`` and ``step:S/N val_loss:…`` (training), ``stopping_early:`` (the cap), ``Serialized
model …`` / ``Code size`` / ``Total submission size`` (export), and every later line that prints a ``val_bpb``
(an evaluation of the final model, named by its first word: ``final_int8_zlib_roundtrip``, ``legal_ttt``, …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from golfc.audit.logs import EVAL_TIME, clean_line

STEP = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\s")  # ``step:S/N …`` (reference) or ``S/N …`` (later records)
TRAIN_LOSS = re.compile(r"\btrain_loss:\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
VAL_LOSS = re.compile(r"\bval_loss:\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
VAL_BPB = re.compile(r"\bval_bpb[:=]\s*([-+]?\d+(?:\.\d+)?)")
WARMUP = re.compile(r"^\w*warmup_step:\s*(\d+)/(\d+)")  # warmup_step, loop_warmup_step, …
EXPORT = re.compile(r"^(Serialized model|Code size|Total submission size)")
TRAINING_OVER = ("stopping_early", "peak memory")


@dataclass
class Phase:
    """One phase of a run: seconds since launch (golfc's clock) at its start and end, and what the log said."""

    name: str
    start_s: float
    end_s: float
    logged_s: float | None = None  # the duration the log itself printed (eval_time), when it did

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "seconds": round(self.seconds, 3), "logged_s": self.logged_s}


@dataclass
class PhaseTracker:
    """Feed it ``(seconds since launch, line)`` in order; it knows the phase the run is in and, at the end, the
    phases it went through. Lines of the script's source (a log that starts with it) mean nothing here."""

    state: str = "setup"  # setup -> training -> export -> eval
    last_t: float = 0.0
    warmup_start: float | None = None
    warmup_end: float | None = None
    train_start: float | None = None
    train_end: float | None = None
    export_start: float | None = None
    export_end: float | None = None
    evals: list[Phase] = field(default_factory=list)
    step: int | None = None
    iterations: int | None = None
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    last_train_loss: float | None = None
    _previous_t: float = 0.0

    def feed(self, t: float, raw: str) -> None:
        line = clean_line(raw).strip()
        previous, self._previous_t, self.last_t = self._previous_t, t, t
        if not line:
            return
        step = STEP.match(line)
        if step and self.state in ("setup", "training"):
            if self.state == "setup":
                self.state, self.train_start = "training", previous if self.warmup_end is None else self.warmup_end
            self.step, self.iterations = int(step.group(1)), int(step.group(2))
            self.train_end = t
            self._curves(line)
            return
        warmup = WARMUP.match(line)
        if warmup and (self.state == "setup" or (self.state == "training" and self.step is None)):
            self.warmup_start = previous if self.warmup_start is None else self.warmup_start
            self.warmup_end = t
            if warmup.group(1) == warmup.group(2):  # the last warmup step: the timed training starts now
                self.state, self.train_start = "training", t
            return
        if self.state == "training" and line.startswith(TRAINING_OVER):
            self.train_end = t if line.startswith("stopping_early") else self.train_end
            return
        if EXPORT.match(line):
            if self.state in ("setup", "training"):
                self.state, self.export_start = "export", self.train_end if self.train_end is not None else previous
            self.export_end = t
            return
        if VAL_BPB.search(line) and self.state in ("training", "export", "eval"):
            self._eval_line(t, line)

    def _curves(self, line: str) -> None:
        loss = TRAIN_LOSS.search(line)
        if loss:
            self.last_train_loss = float(loss.group(1))
            self.train_curve.append((self.step or 0, self.last_train_loss))
        loss = VAL_LOSS.search(line)
        if loss:
            self.val_curve.append((self.step or 0, float(loss.group(1))))

    def _eval_line(self, t: float, line: str) -> None:
        if self.state == "training":  # no export lines: the evaluation starts where training ended
            self.export_start = self.export_end = self.train_end
        self.state = "eval"
        words = line.split()
        label = "_".join(words[:2]) if words[0] == "diagnostic" and len(words) > 1 else words[0]
        label = label.rstrip(":")
        timing = EVAL_TIME.search(line)
        logged = None if timing is None else float(timing.group(1)) / (1000.0 if timing.group(2) == "ms" else 1.0)
        base = label.removesuffix("_exact")
        if self.evals and label.endswith("_exact") and self.evals[-1].name == base:
            self.evals[-1].end_s = t  # the exact line of the same evaluation
            return
        start = self.evals[-1].end_s if self.evals else (self.export_end if self.export_end is not None else t)
        self.evals.append(Phase(base, start, t, logged))

    @property
    def training_over(self) -> bool:
        return self.state in ("export", "eval")

    def phase_at(self, t: float) -> str:
        """The phase a moment (seconds since launch) falls in: setup (warmup included), training, export, eval."""
        if self.train_start is None or t < self.train_start:
            return "setup"
        if not self.training_over or t <= (self.train_end if self.train_end is not None else t):
            return "training"
        return "export" if self.export_end is not None and t <= self.export_end else "eval"

    def phases(self, end_s: float) -> list[Phase]:
        """Every phase seen, in order; a phase the run never left ends at ``end_s`` (a killed run)."""
        out = []
        first = self.warmup_start if self.warmup_start is not None else self.train_start
        out.append(Phase("setup", 0.0, first if first is not None else end_s))
        if self.warmup_start is not None:
            out.append(Phase("compile_warmup", self.warmup_start, self.warmup_end or end_s))
        if self.train_start is not None:
            out.append(Phase("training", self.train_start, self.train_end if self.training_over else end_s))
        if self.export_start is not None and self.export_end is not None and self.export_end > self.export_start:
            out.append(Phase("serialization", self.export_start, self.export_end))
        out.extend(self.evals)
        return out

    def eval_wall_s(self) -> float | None:
        """golfc's clock over the evaluations: from the end of the export to the last score line."""
        if not self.evals:
            return None
        start = self.export_end if self.export_end is not None else self.train_end
        return self.evals[-1].end_s - (start if start is not None else self.evals[0].start_s)

    def train_wall_s(self, now: float | None = None) -> float | None:
        """golfc's clock over training: from the last line before the first step line (the end of the compile
        warmup) to the last step line; periodic validation inside it is counted, the log's train_time skips it."""
        if self.train_start is None:
            return None
        end = self.train_end if self.training_over or now is None else now
        return (end or self.train_start) - self.train_start
