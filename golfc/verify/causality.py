"""Causality probes: run a program's evaluation in probe mode (core/probe, ``GOLFC_PROBE``) on token streams built
from the validation shard and compare the scores position by position (docs/verify.md).

- ``causality`` (C1, C3, C4): tokens at and after j changed, several j (inside a window, at window, batch and
  chunk boundaries); every NLL before j unchanged; every target scored exactly once.
- ``normalization`` (C2): at sampled positions the scored distribution sums to 1 over the vocabulary, and the
  scored NLL is -log of its entry for the realized token.
- ``target`` (C2): the distribution at t is the same when only token t changes.
- ``batch`` (L13): the scores do not depend on the evaluation batch size or the number of ranks.
- ``documents`` (L18): where the program claims document isolation, changing document k-1 leaves document k's
  scores unchanged.

Each run is a subprocess of the program (under torchrun when ``nproc`` > 1); nothing of it is imported here.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from golfc.errors import GolfcError
from golfc.verify.findings import CheckResult

CHECKS = ("causality", "normalization", "target", "batch", "documents")
RULES = {"causality": "C1", "normalization": "C2", "target": "C2", "batch": "L13", "documents": "L18"}
NORMALIZATION_TOLERANCE = 1e-4  # |sum p - 1| and |nll + log p(x_t)| allowed at a sampled position
ROUNDING = 1e-4  # world-size differences this small (relative) are rounding of a rank reduction: WARN, not FAIL
CPU_WORLD_WINDOWS = 16  # windows of the rank comparison where it runs on the CPU: 8 a rank, the split still tested
BOS_ID = 1  # the challenge's shards start every document with BOS = 1
PROBE_MARK = "GOLFC_PROBE"
PROBE_VARS = ("GOLFC_PROBE", "GOLFC_PROBE_OUT", "GOLFC_PROBE_ARTIFACT", "GOLFC_PROBE_TRAIN_STEPS", "GOLFC_PROBE_ROWS")
TRAIN_STEPS = 2  # without an artifact: briefly trained weights (at init the blocks are the identity)
RUN_TIMEOUT = 1800


def run_checks(
    program: Path,
    checks: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    artifact: Path | None = None,
    tolerance: float = 0.0,
    nproc: int = 1,
) -> list[CheckResult]:
    """One :class:`CheckResult` per requested check, in the order asked. ``program`` is an emitted or
    hand-written ``train_gpt.py`` (wrapped or readable); ``env`` the run's environment (DATA_PATH,
    TOKENIZER_PATH, VOCAB_SIZE, shape knobs); ``artifact`` the weights to probe (else the program trains
    :data:`TRAIN_STEPS` steps and exports its own); ``tolerance`` the largest NLL difference taken as equal
    (0: bit-identical); ``nproc`` the ranks of the scored evaluation."""
    program = Path(program)
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise GolfcError(f"unknown check {unknown[0]!r}: expected one of {', '.join(CHECKS)}")
    if not program.is_file():
        raise GolfcError(f"{program}: no such program, expected a train_gpt.py")
    if artifact is not None and not Path(artifact).is_file():
        raise GolfcError(f"{artifact}: no such artifact file")
    if nproc < 1 or tolerance < 0:
        raise GolfcError(f"nproc={nproc}, tolerance={tolerance}: expected nproc >= 1 and tolerance >= 0")
    checks = list(dict.fromkeys(checks))
    texts = program_texts(program)
    if not any(PROBE_MARK in text for text in texts):
        reason = f"{program.name} has no probe mode ({PROBE_MARK}): a hand-written program cannot be probed"
        return [CheckResult(c, RULES[c], "SKIP", reason) for c in checks]
    prober = Prober(program.resolve(), Path(workdir), dict(env), artifact, nproc)
    try:
        return Session(prober, checks, tolerance, static_settings(texts, env)).run()
    except ProbeFailed as exc:
        return [CheckResult(c, RULES[c], "WARN", f"not checked: {exc}") for c in checks]


def program_texts(program: Path) -> list[str]:
    """The program's source and every layer unwrapped from it (a self-extracting wrapper's sections)."""
    text = program.read_text(encoding="utf-8", errors="replace")
    if PROBE_MARK in text and "class Hyperparameters" in text:
        return [text]
    from golfc.audit.unwrap import unwrap_script

    return [text, *(unit.text for unit in unwrap_script(program).units)]


SETTING_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


def setting_value(expr: ast.expr, env: Mapping[str, str]) -> Any:
    """``T(os.environ.get("NAME", default))`` (casts nested freely) under ``env``; anything else raises
    ValueError. Only those names, attributes and calls are evaluated: the program's code never runs."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if isinstance(func, ast.Name) and func.id in SETTING_CASTS and len(node.args) == 1:
                return SETTING_CASTS[func.id](value(node.args[0]))
            if ast.unparse(func) == "os.environ.get" and 1 <= len(node.args) <= 2:
                name = value(node.args[0])
                return env.get(name, value(node.args[1]) if len(node.args) == 2 else None)
        raise ValueError(ast.unparse(node))

    if "os.environ.get" not in ast.unparse(expr):
        raise ValueError("not read from the environment")
    return value(expr)


def static_settings(texts: Sequence[str], env: Mapping[str, str]) -> dict[str, Any] | None:
    """The program's settings read without running it: every ``name = T(os.environ.get("NAME", default))`` of
    its ``class Hyperparameters``, under ``env``. None when there is no such class with ``train_seq_len``."""
    settings: dict[str, Any] = {}
    for part in texts:
        try:
            tree = ast.parse(part)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ClassDef) and node.name == "Hyperparameters"):
                continue
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    try:
                        settings[stmt.targets[0].id] = setting_value(stmt.value, env)
                    except (ValueError, TypeError):
                        continue
    return settings if "train_seq_len" in settings else None


class ProbeFailed(Exception):
    """A probe run that did not finish: the checks cannot be decided (WARN, not a verdict)."""


@dataclass
class ProbeResult:
    """One probe run's output (core/probe's npz)."""

    nll: np.ndarray  # (K, N) float32, NaN where unscored
    scored: np.ndarray  # (K, N) times each target was scored
    rows: np.ndarray  # (K, R, V) log-probabilities
    row_positions: list[int]
    window: int
    spans: np.ndarray
    batch_seqs: int
    world_size: int
    settings: dict[str, Any]
    document_isolated: bool

    @classmethod
    def load(cls, path: Path) -> ProbeResult:
        with np.load(path) as z:
            return cls(z["nll"], z["scored"], z["rows"], [int(p) for p in z["row_positions"]], int(z["window"]),
                       z["spans"], int(z["batch_seqs"]), int(z["world_size"]), json.loads(str(z["settings"])),
                       bool(z["document_isolated"]))


@dataclass
class Prober:
    """Runs the program in probe mode in its own folder under ``workdir``."""

    program: Path
    workdir: Path
    env: dict[str, str]
    artifact: Path | None
    nproc: int
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, name: str, streams: np.ndarray, *, rows: Sequence[int] = (), nproc: int | None = None,
                 extra: Mapping[str, str] | None = None, train: bool = False) -> ProbeResult:
        nproc = nproc or self.nproc
        with self.lock:  # runs may be started from several threads: each gets its own numbered folder
            cwd = self.workdir / f"probe-{self.runs:02d}-{name}"
            self.runs += 1
        cwd.mkdir(parents=True, exist_ok=True)
        np.save(cwd / "streams.npy", np.asarray(streams, dtype=np.int32))
        env = {k: v for k, v in os.environ.items() if k not in PROBE_VARS}
        env.update({k: v for k, v in self.env.items() if k not in PROBE_VARS})
        env.update(extra or {})
        env.update(GOLFC_PROBE=str(cwd / "streams.npy"), GOLFC_PROBE_OUT=str(cwd / "probe.npz"),
                   GOLFC_PROBE_ROWS=",".join(str(p) for p in rows))
        if train:  # the caller's GOLFC_PROBE_TRAIN_STEPS (0: the seeded initial weights) or TRAIN_STEPS
            env["GOLFC_PROBE_TRAIN_STEPS"] = self.env.get("GOLFC_PROBE_TRAIN_STEPS", str(TRAIN_STEPS))
        elif self.artifact is not None:
            env["GOLFC_PROBE_ARTIFACT"] = str(Path(self.artifact).resolve())
        command = [sys.executable, str(self.program)]
        if nproc > 1:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                       str(self.program)]
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              check=False)
        (cwd / "stdout.txt").write_text(proc.stdout)
        (cwd / "stderr.txt").write_text(proc.stderr)
        if proc.returncode != 0 or not (cwd / "probe.npz").is_file():
            raise ProbeFailed(f"probe run {cwd.name} exited {proc.returncode}: "
                              f"{failure_line(proc.stderr or proc.stdout)} (log: {cwd / 'stderr.txt'})")
        if train:  # later runs probe the artifact this one exported
            found = sorted(cwd.glob("final_model.*.ptz"))
            if found:
                self.artifact = found[0]
        return ProbeResult.load(cwd / "probe.npz")


def cpu_threads_each(processes: int) -> int:
    """Threads for each of ``processes`` CPU programs running at once: the host's cores shared out. Explicit,
    because torchrun otherwise gives each rank one thread (and a lone process takes every core), so the two-rank
    CPU run would be the slowest of the probes."""
    return max(1, (os.cpu_count() or 1) // processes)


def failure_line(text: str) -> str:
    """The line that says why a run failed: the last error-looking line (torchrun ends its report with a rule
    of '=' characters and a summary), else the last line with words."""
    lines = [line.strip() for line in text.splitlines() if any(ch.isalnum() for ch in line)]
    errors = [line for line in lines if re.search(r"\b\w*(Error|Exception)\b|^error:", line)]
    return (errors or lines or ["no output"])[-1]


def visible_gpus(env: Mapping[str, str]) -> int:
    """How many GPUs the probe runs can give one rank each: unlimited on the CPU (DEVICE=cpu, or no CUDA)."""
    if env.get("DEVICE", os.environ.get("DEVICE", "auto")) == "cpu":
        return sys.maxsize
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if count and listed is not None:
        count = min(count, len([d for d in listed.split(",") if d.strip()]))
    return count or sys.maxsize


@dataclass
class Layout:
    """Where the checks change tokens, from the program's settings and its window plan."""

    window: int
    stride: int
    batch_seqs: int
    chunk: int | None
    length: int  # tokens per probe stream
    cuts: list[tuple[int, str]] = field(default_factory=list)  # (j, why)
    flips: list[tuple[int, str]] = field(default_factory=list)  # (t, why): target-independence positions

    @classmethod
    def plan(cls, s: Mapping[str, Any], batch_seqs: int | None, available: int) -> Layout:
        """From the settings: the window (EVAL_SEQ_LEN or TRAIN_SEQ_LEN), the stride (EVAL_STRIDE, else the window),
        the windows per forward (the plan's, else EVAL_BATCH_SEQS, else VAL_BATCH_SIZE's share of 8 micro-batches)
        and the TTT chunk (TTT_CHUNK_TOKENS)."""
        window = int(s.get("eval_seq_len") or s["train_seq_len"])
        stride = min(int(s.get("eval_stride") or window), window)
        if batch_seqs is None:
            plain = int(s.get("val_batch_size", 0)) // (8 * int(s["train_seq_len"]))
            batch_seqs = int(s.get("eval_batch_seqs") or plain)
        batch = max(int(batch_seqs), 1)
        chunk = int(s["ttt_chunk_tokens"]) if s.get("ttt_chunk_tokens") else None
        targets = window + stride * (min(batch, 64) + 2)
        if chunk:
            targets = max(targets, 2 * chunk + window)
        length = min(targets, available - 1) + 1
        layout = cls(window, stride, batch, chunk, length)
        candidates = [
            (window // 2 + 1, "inside the first window"),
            (window + 1, "the first target of the second window"),
            (window + stride + stride // 2 + 1, "inside the third window of the first batch"),
            (window + stride * (batch - 1) + 1, f"the first target of the second batch ({batch} windows a batch)"),
        ]
        if chunk:
            candidates += [(chunk // 2 + 1, "inside the first TTT chunk"), (chunk + 1, "the first target of chunk 1")]
        seen: set[int] = set()
        for j, why in candidates:
            if 2 <= j < length - 1 and j not in seen:
                seen.add(j)
                layout.cuts.append((j, why))
        layout.cuts.sort()
        return layout

    def choose_flips(self, base: np.ndarray) -> None:
        """Target-independence positions: inside the first window, the first target of the second, and up to
        two late positions whose previous token occurred earlier (where a cache keyed on (previous, target)
        has something to find)."""
        length = len(base)
        flips = [(self.window // 2 + 1, "inside the first window"),
                 (self.window + 1, "the first target of a later window")]
        seen: dict[int, int] = {}
        repeats = []
        for t in range(1, length):
            prev = int(base[t - 1])
            if prev in seen and int(base[seen[prev]]) != int(base[t]) and t > self.window + 1:
                repeats.append(t)
            seen[prev] = t
        flips += [(t, "a later position whose previous token occurred before") for t in repeats[-2:]]
        if not repeats:
            flips.append((length - 2, "near the end of the stream"))
        self.flips = list({t: (t, why) for t, why in flips if 1 <= t < length}.values())

    @property
    def row_positions(self) -> list[int]:
        return sorted({1, self.length - 1, *(t for t, _ in self.flips)})


def read_validation(env: Mapping[str, str], settings: Mapping[str, Any], cwd: Path) -> np.ndarray:
    """The first validation shard's tokens (int64)."""
    from golfc.data.shards import ShardError, find_shards, read_shard

    data_path = Path(env.get("DATA_PATH") or settings.get("data_path") or ".")
    if not data_path.is_absolute():
        data_path = cwd / data_path
    shards = find_shards(data_path, "val")
    if not shards:
        raise GolfcError(f"DATA_PATH={data_path}: no fineweb_val_*.bin shard, expected the run's validation data")
    try:
        return read_shard(shards[0]).astype(np.int64)
    except ShardError as exc:
        raise GolfcError(str(exc)) from None


def replaced(base: np.ndarray, start: int, stop: int, seed: int, vocab: int, keep_bos: bool = False) -> np.ndarray:
    """A copy of ``base`` whose tokens start..stop-1 are redrawn (each one differs from the original)."""
    rng = np.random.default_rng(seed)
    out = base.copy()
    n = stop - start
    if n <= 0:
        return out
    drawn = rng.integers(0, vocab, size=n)
    same = drawn == base[start:stop]
    drawn[same] = (drawn[same] + 1 + rng.integers(0, vocab - 1, size=int(same.sum()))) % vocab
    if keep_bos:  # documents keep their boundaries; no new ones appear
        bos = base[start:stop] == BOS_ID
        drawn[bos] = BOS_ID
        drawn[(~bos) & (drawn == BOS_ID)] = (BOS_ID + 1) % vocab
    out[start:stop] = drawn
    return out


def differences(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices where two NLL vectors differ by more than ``tolerance`` (NaN equals NaN only)."""
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        differ = np.abs(a.astype(np.float64) - b.astype(np.float64)) > tolerance
    return np.nonzero((differ | (np.isnan(a) != np.isnan(b))) & ~both_nan)[0]


class Session:
    """The checks of one program: which probe runs they need, then the comparisons."""

    def __init__(self, prober: Prober, checks: list[str], tolerance: float, settings: dict[str, Any] | None) -> None:
        self.prober, self.checks, self.tolerance, self.settings = prober, checks, tolerance, settings
        self.scaled = ""  # a note on probe settings scaled down to fit the probe stream (phased TTT's prefix)

    def run(self) -> list[CheckResult]:
        batch_seqs = None
        if self.settings is None:  # settings the source does not show: ask the program (one short probe run)
            probe_len = 2 * int(self.prober.env.get("TRAIN_SEQ_LEN", "1024")) + 1
            dummy = np.full(probe_len, BOS_ID, dtype=np.int64)
            first = self.prober("prepare", dummy, train=self.prober.artifact is None)
            self.settings, batch_seqs = first.settings, first.batch_seqs
            self.settings.setdefault("train_seq_len", first.window)
        self.vocab = int(self.settings.get("vocab_size") or 2)
        val = read_validation(self.prober.env, self.settings, self.prober.workdir)
        layout = Layout.plan(self.settings, batch_seqs, len(val))
        self.layout, self.val = layout, val
        base = val[: layout.length]
        self.scaled = self.phase_cuts(base, layout) if self.settings.get("ttt_mode") == "phased" else ""
        streams: list[np.ndarray] = [base]
        labels: list[tuple[str, Any]] = [("base", None)]
        if "causality" in self.checks:
            for i, (j, why) in enumerate(layout.cuts):
                streams.append(replaced(base, j, len(base), seed=100 + i, vocab=self.vocab))
                labels.append(("cut", (j, why)))
        layout.choose_flips(base)
        if "target" in self.checks:
            for i, (t, why) in enumerate(layout.flips):
                streams.append(self.flipped(base, t, seed=200 + i))
                labels.append(("flip", (t, f"{why}; token {int(base[t])} -> {int(streams[-1][t])}")))
        doc_cases = self.document_streams(streams, labels) if "documents" in self.checks else []
        rows = layout.row_positions if {"normalization", "target"} & set(self.checks) else []
        self.rows = rows
        self.labels, stacked = labels, np.stack(streams)
        # once the weights exist the runs are independent: the batch check's runs go side by side with the main one
        # (on one GPU they share it; the world comparison's CPU runs take the host's cores)
        with ThreadPoolExecutor(max_workers=4) as pool:
            trained = self.prober("streams", stacked, rows=rows, train=True) if self.prober.artifact is None else None
            side = self.start_batch_runs(pool) if "batch" in self.checks else {}
            self.main = trained or self.prober("streams", stacked, rows=rows)
            results = []
            for check in self.checks:
                if check == "causality":
                    results.append(self.causality())
                elif check == "normalization":
                    results.append(self.normalization())
                elif check == "target":
                    results.append(self.target())
                elif check == "batch":
                    results.append(self.batch(side))
                else:
                    results.append(self.documents(doc_cases))
            return results

    def phase_cuts(self, base: np.ndarray, layout: Layout) -> str:
        """Phased TTT (TTT_MODE=phased): its global SGD phases inside the probe stream. A configured prefix of
        PHASED_TTT_PREFIX_DOCS documents (2,500 in the records) is far longer than a probe stream, so every probe run
        gets a prefix of two thirds of the stream's documents (the same number of phases), and the causality check
        cuts at the first target after each boundary. Returns the note for the evidence ("" when nothing changed)."""
        starts = [0, *(np.nonzero(base[1:-1] == BOS_ID)[0] + 1).tolist()]  # document starts, as the plugin finds them
        configured = int(self.settings.get("phased_ttt_prefix_docs") or 0)
        phases = max(int(self.settings.get("phased_ttt_num_phases") or 1), 1)
        prefix = min(configured, len(starts) * 2 // 3)
        note = ""
        if prefix < configured:
            self.prober.env = {**self.prober.env, "PHASED_TTT_PREFIX_DOCS": str(prefix)}  # the caller's stays as it was
            note = f"; probe runs with PHASED_TTT_PREFIX_DOCS={prefix} of {configured} ({len(starts)} documents)"
        for phase in range(phases):
            b = prefix * (phase + 1) // phases
            j = starts[b] + 1 if 0 < b < len(starts) else 0
            if 2 <= j < layout.length - 1 and j not in {c for c, _ in layout.cuts}:
                layout.cuts.append((j, f"the first target after phase {phase + 1}'s global SGD (document {b})"))
        layout.cuts.sort()
        return note

    def flipped(self, base: np.ndarray, t: int, seed: int) -> np.ndarray:
        """``base`` with only token t changed: to the token that followed the same previous token earlier in the
        stream (what a cache would have seen) where there is one, else to a random other token."""
        earlier = [s for s in range(1, t) if base[s - 1] == base[t - 1] and base[s] != base[t]]
        if not earlier:
            return replaced(base, t, t + 1, seed=seed, vocab=self.vocab)
        out = base.copy()
        out[t] = base[earlier[-1]]
        return out

    # ---------------------------------------------------------------------------------------------
    def result(self, check: str, verdict: str, evidence: str, **details: Any) -> CheckResult:
        return CheckResult(check, RULES[check], verdict, evidence, details)

    def causality(self) -> CheckResult:
        main, tol = self.main, self.tolerance
        base = main.nll[0]
        coverage = main.scored[0][1:]
        if (coverage != 1).any():
            p = int(np.nonzero(coverage != 1)[0][0]) + 1
            return self.result("causality", "FAIL", f"target {p} of the probe stream was scored {int(coverage[p - 1])} "
                               "times, expected exactly once (C4: one left-to-right pass)", position=p)
        violations, tested = [], []
        for k, (kind, info) in enumerate(self.labels):
            if kind != "cut":
                continue
            j, why = info
            tested.append(j)
            bad = [p for p in differences(base[:j], main.nll[k][:j], tol) if p >= 1]
            if bad:
                p = int(bad[0])
                violations.append({"j": j, "where": why, "position": p, "count": len(bad),
                                   "before": float(base[p]), "after": float(main.nll[k][p])})
        if not tested:
            return self.result("causality", "SKIP", f"probe stream of {self.layout.length} tokens too short to cut")
        if violations:
            v = violations[0]
            more = f" ({v['count']} positions before j; {len(violations)} of {len(tested)} cuts)"
            return self.result(
                "causality", "FAIL",
                f"tokens from j={v['j']} on ({v['where']}) changed: nll at position {v['position']} < j changed "
                f"{v['before']!r} -> {v['after']!r}{more}", violations=violations, cuts=tested)
        return self.result("causality", "PASS", f"{len(tested)} cuts (j = {', '.join(map(str, tested))}): every "
                           f"earlier nll {'bit-identical' if tol == 0 else f'within {tol}'}; every target scored once"
                           f"{self.scaled}", cuts=tested)

    def missing_rows(self, check: str, k: int) -> CheckResult | None:
        absent = [p for i, p in enumerate(self.main.row_positions) if np.isnan(self.main.rows[k, i]).all()]
        if absent:
            return self.result(check, "WARN", f"no distribution recorded at position {absent[0]}: the scorer neither "
                               "scores through GPT.logits and span_scores nor hands its log-probabilities to "
                               "probe_distribution", positions=absent)
        return None

    def normalization(self) -> CheckResult:
        main = self.main
        missing = self.missing_rows("normalization", 0)
        if missing:
            return missing
        base = self.val[: self.layout.length]
        for i, p in enumerate(main.row_positions):
            row = main.rows[0, i].astype(np.float64)
            total = float(np.exp(row).sum())
            if not abs(total - 1.0) < NORMALIZATION_TOLERANCE:
                return self.result("normalization", "FAIL", f"position {p}: the scored distribution sums to "
                                   f"{total!r} over {row.size} tokens, expected 1 (|sum p - 1| < "
                                   f"{NORMALIZATION_TOLERANCE})", position=p, sum=total)
            realized = -float(row[int(base[p])])
            scored = float(main.nll[0, p])
            if not abs(realized - scored) <= NORMALIZATION_TOLERANCE * max(1.0, abs(scored)):
                return self.result("normalization", "FAIL", f"position {p}: scored nll {scored!r} is not -log p of "
                                   f"the realized token under the recorded distribution ({realized!r})",
                                   position=p, nll=scored, row_nll=realized)
        return self.result("normalization", "PASS", f"{len(main.row_positions)} positions "
                           f"({', '.join(map(str, main.row_positions))}): sum p = 1 within {NORMALIZATION_TOLERANCE} "
                           "over the vocabulary, and each scored nll is -log p of its token",
                           positions=main.row_positions)

    def target(self) -> CheckResult:
        main = self.main
        tested = []
        for k, (kind, info) in enumerate(self.labels):
            if kind != "flip":
                continue
            t, why = info
            missing = self.missing_rows("target", k) or self.missing_rows("target", 0)
            if missing:
                return missing
            i = main.row_positions.index(t)
            a, b = main.rows[0, i], main.rows[k, i]
            bad = differences(a, b, self.tolerance)
            tested.append(t)
            if bad.size:
                token = int(bad[0])
                return self.result("target", "FAIL", f"position {t} ({why}): changing only the token at {t} "
                                   f"changed the distribution scored there: log p of token "
                                   f"{token} {float(a[token])!r} -> {float(b[token])!r} ({bad.size} tokens differ)",
                                   position=t, token=token, before=float(a[token]), after=float(b[token]))
        if not tested:
            return self.result("target", "SKIP", "no position to flip")
        return self.result("target", "PASS", f"positions {', '.join(map(str, tested))}: p_t(.) unchanged when only "
                           "token t changes", positions=tested)

    def start_batch_runs(self, pool: ThreadPoolExecutor) -> dict[str, Future[ProbeResult]]:
        """The batch check's probe runs, started in ``pool``: the base stream under another evaluation batch size
        ("batch"), and under another number of ranks, 1 -> 2 or N -> 1 ("world"). Where the run's GPUs are fewer
        than the ranks (one GPU: a second rank has no device), both sides of the world comparison run on the CPU
        ("world-ref" is the one-rank CPU side), so the world-size split is still tested."""
        base = self.val[: self.layout.length][None]
        if "eval_batch_seqs" in self.settings:
            self.batch_extra = {"EVAL_BATCH_SEQS": str(1 if self.layout.batch_seqs > 1 else 3)}
        else:  # plain windows: VAL_BATCH_SIZE counts tokens over all ranks and micro-batches (8 of them)
            window = int(self.settings.get("train_seq_len") or self.layout.window)
            self.batch_extra = {"VAL_BATCH_SIZE": str(8 * window * (1 if self.layout.batch_seqs > 1 else 3))}
        self.world_ranks = 2 if self.prober.nproc == 1 else 1
        runs = {"batch": pool.submit(self.prober, "batch", base, rows=self.rows, extra=self.batch_extra)}
        on_cpu: dict[str, str] = {}
        if self.world_ranks > visible_gpus(self.prober.env):
            # the real model on the CPU: a shorter stream (and, for TTT, within its first chunk unless chunks are
            # small), since only the split across ranks is under test here and the GPU runs cover the rest
            on_cpu = {"DEVICE": "cpu", "OMP_NUM_THREADS": str(cpu_threads_each(1 + self.world_ranks))}
            layout = self.layout
            base = base[:, : min(layout.length, layout.window + layout.stride * (CPU_WORLD_WINDOWS - 1) + 1)]
            rows = [p for p in self.rows if p < base.shape[1]]
            runs["world-ref"] = pool.submit(self.prober, "world-ref", base, rows=rows, extra=on_cpu)
            runs["world"] = pool.submit(self.prober, "world", base, rows=rows, nproc=self.world_ranks, extra=on_cpu)
        else:
            runs["world"] = pool.submit(self.prober, "world", base, rows=self.rows, nproc=self.world_ranks)
        return runs

    def batch(self, runs: Mapping[str, Future[ProbeResult]]) -> CheckResult:
        reference = self.main.nll[0]
        findings, varied = [], []
        other = runs["batch"].result()
        if other.batch_seqs == self.main.batch_seqs:
            findings.append(("WARN", f"{' '.join(f'{k}={v}' for k, v in self.batch_extra.items())} left the batch "
                             f"at {other.batch_seqs} windows: batch size not varied", {}))
        else:
            varied.append(f"batch {self.main.batch_seqs} -> {other.batch_seqs} windows")
            findings.append(self.compare(reference, other.nll[0], varied[-1], rounding_ok=False))
        findings.append(self.world(runs, reference, varied))
        for verdict in ("FAIL", "WARN"):
            for v, evidence, details in findings:
                if v == verdict:
                    return self.result("batch", verdict, evidence, **details)
        same = "bit-identical" if self.tolerance == 0 else f"within {self.tolerance}"
        return self.result("batch", "PASS", f"every nll {same} ({'; '.join(varied)})", varied=varied)

    def world(self, runs: Mapping[str, Future[ProbeResult]], reference: np.ndarray,
              varied: list[str]) -> tuple[str, str, dict[str, Any]]:
        """The scores under another number of ranks, against the run's own (or, on the CPU, against the one-rank
        CPU run's). A world run that fails leaves the batch-size comparison standing."""
        ranks, where = self.world_ranks, ""
        try:
            if "world-ref" in runs:
                reference = runs["world-ref"].result().nll[0]
                where = f" on the CPU (fewer GPUs than ranks), over the first {len(reference) - 1:,} targets"
            world = runs["world"].result()
        except ProbeFailed as exc:
            return ("WARN", f"{self.prober.nproc} -> {ranks} ranks not checked: {exc}", {})
        varied.append(f"{self.prober.nproc} -> {world.world_size} ranks{where}")
        return self.compare(reference, world.nll[0], varied[-1], rounding_ok=True, adapts_after=self.layout.chunk)

    def compare(self, a: np.ndarray, b: np.ndarray, what: str, rounding_ok: bool,
                adapts_after: int | None = None) -> tuple[str, str, dict[str, Any]]:
        """FAIL where the scores differ; WARN where the only differences are rounding of a rank reduction, or
        come after the first TTT chunk (adaptation whose global batch grows with the ranks: legal, and causality
        is the check that decides whether the adaptation leaks)."""
        bad = [p for p in differences(a, b, self.tolerance) if p >= 1]
        if not bad:
            return ("PASS", "", {})
        p = int(bad[0])
        delta = np.nanmax(np.abs(a[bad].astype(np.float64) - b[bad]) / np.maximum(1.0, np.abs(a[bad])))
        verdict, note = "FAIL", ""
        if rounding_ok and delta <= ROUNDING:
            verdict, note = "WARN", " (rounding only: the ranks reduce in another order)"
        elif adapts_after is not None and p > adapts_after:
            verdict, note = "WARN", (f" (every score up to the first TTT chunk's end {adapts_after} is identical: "
                                     "the adaptation depends on the number of ranks)")
        return (verdict, f"{what}: nll at position {p} changed {float(a[p])!r} -> {float(b[p])!r} ({len(bad)} "
                f"positions, max relative change {delta:.3g}){note}",
                {"varied": what, "position": p, "before": float(a[p]), "after": float(b[p]), "count": len(bad)})

    # ---------------------------------------------------------------------------------------------
    def document_streams(self, streams: list[np.ndarray], labels: list[tuple[str, Any]]) -> list[tuple[int, int, int]]:
        """A stream of short validation documents (a few per window) and, for up to three documents k, a copy
        with document k-1's tokens redrawn: [(stream index, BOS of document k, end of document k)]."""
        val, length = self.val, self.layout.length
        starts = [*np.nonzero(val == BOS_ID)[0].tolist(), len(val)]
        piece = max(4, self.layout.window // 3)
        out: list[int] = []
        for a, b in itertools.pairwise(starts):
            out.extend(val[a: min(b, a + piece)].tolist())
            if len(out) >= length:
                break
        if len(out) < length:
            return []
        docs = np.asarray(out[:length], dtype=np.int64)
        bos = [int(i) for i in np.nonzero(docs == BOS_ID)[0]]
        streams.append(docs)
        labels.append(("docs", None))
        base_index = len(streams) - 1
        cases = []
        for k in range(1, len(bos) - 1):
            if len(cases) == 3:
                break
            prev, start, end = bos[k - 1], bos[k], bos[k + 1]
            if start - prev < 2:
                continue
            streams.append(replaced(docs, prev + 1, start, seed=300 + k, vocab=self.vocab, keep_bos=True))
            labels.append(("doc", (start, end)))
            cases.append((len(streams) - 1, start, end))
        self.doc_base = base_index
        return cases

    def documents(self, cases: list[tuple[int, int, int]]) -> CheckResult:
        if not self.main.document_isolated:
            return self.result("documents", "SKIP", "the program does not claim document isolation "
                               "(no DOCUMENT_ISOLATED in its run-time code)")
        if not cases:
            return self.result("documents", "SKIP", "the validation shard has too few documents for the probe stream")
        base = self.main.nll[self.doc_base]
        for k, start, end in cases:
            bad = [p for p in differences(base[start + 1: end + 1], self.main.nll[k][start + 1: end + 1],
                                          self.tolerance)]
            if bad:
                p = start + 1 + int(bad[0])
                return self.result("documents", "FAIL", f"changing the document before BOS {start} changed the nll at "
                                   f"position {p} of the next document: {float(base[p])!r} -> "
                                   f"{float(self.main.nll[k][p])!r} ({len(bad)} positions)",
                                   bos=start, position=p, before=float(base[p]), after=float(self.main.nll[k][p]))
        return self.result("documents", "PASS", f"{len(cases)} documents (BOS at "
                           f"{', '.join(str(s) for _, s, _ in cases)}): scores unchanged when the document before "
                           "each changes", documents=[s for _, s, _ in cases])
