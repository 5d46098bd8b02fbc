"""Cross-checks between the logs, submission.json and the shipped files: sizes, seeds, clocks, token counts."""

from __future__ import annotations

from dataclasses import dataclass

from golfc.audit.codesize import CodeCount
from golfc.audit.findings import INPUT_RULE, Finding, Severity
from golfc.audit.logs import RunLog, Score
from golfc.audit.submission import Submission, agrees

SIZE_CAP = 16_000_000
TIME_CAP_S = 600.0
DEFAULT_STEP_S = 0.25  # the wall-clock check runs after a step: a run ends up to a step or two past the cap
CERTAIN_OVERSHOOT_S = 1.0  # beyond this (and two steps) the cap was not enforced, e.g. a forced step count


def log_name(run: RunLog) -> str:
    return run.path.name if run.path.parent.name != "logs" else f"logs/{run.path.name}"


@dataclass(frozen=True)
class SizeRow:
    """Bytes of one run: shipped code + the run's artifact, and what its log claimed."""

    log: str
    seed: int | None
    code_bytes: int | None  # the counted code: the shipped train_gpt.py, or its packed form when smaller
    artifact_bytes: int | None
    logged_code_bytes: int | None
    logged_total: int | None
    line: int | None = None  # the log line that printed the artifact size (or the total)
    code_line: int | None = None  # the log line that printed the code size
    shipped_code_bytes: int | None = None  # the shipped train_gpt.py as it is

    @property
    def shipped_total(self) -> int | None:
        if self.shipped_code_bytes is None or self.artifact_bytes is None:
            return None
        return self.shipped_code_bytes + self.artifact_bytes

    @property
    def total(self) -> int | None:
        if self.code_bytes is None or self.artifact_bytes is None:
            return None
        return self.code_bytes + self.artifact_bytes


@dataclass(frozen=True)
class Claim:
    """What submission.json says about one seed's run: its score and, when given, its bytes."""

    val_bpb: float | None
    artifact_bytes: int | None = None
    bytes_total: int | None = None


def seed_claims(submission: Submission | None) -> tuple[dict[int, Claim], Claim | None]:
    """(claims of the top-level ``seed_results`` by seed, the top-level claim for a folder without them): a
    submission that lists no seeds claims its ``val_bpb`` and ``bytes_total`` for the run it submits."""
    if submission is None:
        return {}, None
    by_seed = {c.seed: Claim(c.val_bpb, c.artifact_bytes) for c in submission.top_level_claims}
    if by_seed:
        return by_seed, None
    total = submission.number("bytes_total")
    return {}, Claim(submission.number("val_bpb"), None, None if total is None else int(total))


def _bytes_agree(claim: Claim, run: RunLog) -> bool:
    counted = {run.artifact_bytes, run.total_bytes} - {None}
    return bool(counted) and (claim.artifact_bytes in counted or claim.bytes_total in counted)


def supporting_score(candidates: list[RunLog], claim: Claim | None) -> tuple[RunLog, Score] | None:
    """The (log, score line) of one seed that supports ``claim``: its value agrees with a score line, and among
    those a log whose bytes agree too comes first, then a later score line of a log (the final one), then the
    first log by name. None when no line agrees."""
    if claim is None or claim.val_bpb is None:
        return None
    matches = [(run, score) for run in candidates for score in run.scores if agrees(claim.val_bpb, score.val_bpb)]
    if not matches:
        return None
    order = {id(run): i for i, run in enumerate(candidates)}
    return min(
        matches,
        key=lambda m: (not _bytes_agree(claim, m[0]), order[id(m[0])], -m[0].scores.index(m[1])),
    )


def select_primary(runs: list[RunLog], submission: Submission | None) -> list[RunLog]:
    """One scored run per seed. A seed submission.json claims is scored by the log and line that support the
    claim (its value, then its bytes): the run's score becomes that line's, and ``claimed`` is set. A seed without
    a supporting line keeps its first log's last score line. The other logs of a seed are listed, not counted."""
    by_seed_claims, folder_claim = seed_claims(submission)
    by_seed: dict[object, list[RunLog]] = {}
    for run in runs:
        if run.has_score:
            by_seed.setdefault(run.seed if run.seed is not None else run.path, []).append(run)
    single_seed = len(by_seed) == 1
    primary = []
    for seed, candidates in by_seed.items():
        claim = by_seed_claims.get(seed) if isinstance(seed, int) else None
        if claim is None and single_seed:
            claim = folder_claim
        support = supporting_score(candidates, claim)
        if support is None:
            primary.append(candidates[0])
            continue
        run, score = support
        run.use_score(score)
        run.claimed = True
        primary.append(run)
    return primary


def size_rows(runs: list[RunLog], code: CodeCount | None) -> list[SizeRow]:
    return [
        SizeRow(
            log_name(r),
            r.seed,
            code.counted if code else None,
            r.artifact_bytes,
            r.code_bytes,
            r.total_bytes,
            r.line_of("artifact_bytes") or r.line_of("total_bytes"),
            r.line_of("code_bytes"),
            code.shipped if code else None,
        )
        for r in runs
        if r.artifact_bytes is not None or r.total_bytes is not None
    ]


def check_sizes(rows: list[SizeRow], code: CodeCount | None) -> list[Finding]:
    findings = []
    shipped_code_bytes = code.shipped if code else None
    for row in rows:
        if row.total is not None and row.total > SIZE_CAP:
            findings.append(
                Finding(
                    "L22",
                    Severity.FAIL,
                    f"seed {row.seed}: {_code_words(code)} + artifact "
                    f"{row.artifact_bytes:,} = {row.total:,} bytes, over the {SIZE_CAP:,} cap",
                    row.log,
                    row.line,
                )
            )
        elif code is not None and code.packed_counts and (row.shipped_total or 0) > SIZE_CAP:
            findings.append(
                Finding(
                    "L22",
                    Severity.WARN,
                    f"seed {row.seed}: the shipped train_gpt.py ({code.shipped:,} bytes) is not the counted file: "
                    f"as shipped the total is {row.shipped_total:,}, over the cap; packed ({code.method}: "
                    f"{code.packed:,} bytes by golfc{_logged_words(row)}) it is {row.total:,}, as records from "
                    "2026-04-10 on count it; ship the packed file to leave no doubt",
                    row.log,
                    row.line,
                )
            )
        elif row.total is not None and row.logged_total is not None and row.logged_total > SIZE_CAP:
            findings.append(
                Finding(
                    "L22",
                    Severity.INFO,
                    f"seed {row.seed}: the log's total {row.logged_total:,} is "
                    f"over the cap but counts {row.logged_code_bytes or 0:,} code bytes; the shipped "
                    f"file makes it {row.total:,}",
                    row.log,
                    row.line,
                )
            )
        elif row.total is None and row.logged_total is not None and row.logged_total > SIZE_CAP:
            findings.append(
                Finding(
                    "L22",
                    Severity.WARN,
                    f"seed {row.seed}: the log's total {row.logged_total:,} is "
                    "over the cap, and there is no shipped script to recount it",
                    row.log,
                    row.line,
                )
            )
        if shipped_code_bytes is not None and row.logged_code_bytes not in (None, shipped_code_bytes, row.code_bytes):
            findings.append(
                Finding(
                    "L22",
                    Severity.INFO,
                    f"the log counted {row.logged_code_bytes:,} code bytes; the "
                    f"shipped train_gpt.py has {shipped_code_bytes:,}",
                    row.log,
                    row.code_line,
                )
            )
    return _dedupe(findings)


def _code_words(code: CodeCount | None) -> str:
    if code is None:
        return "code"
    if code.packed_counts:
        return f"code {code.counted:,} (packed by golfc; {code.shipped:,} as shipped)"
    return f"shipped code {code.shipped:,}"


def _logged_words(row: SizeRow) -> str:
    return "" if row.logged_code_bytes is None else f"; the log counted {row.logged_code_bytes:,}"


def check_runs(runs: list[RunLog], primary: list[RunLog], non_record: bool = False) -> list[Finding]:
    findings = []
    for run in runs:
        if not run.has_score:
            findings.append(
                Finding(
                    INPUT_RULE,
                    Severity.WARN,
                    "log has no score (no val_bpb from a final evaluation); not counted",
                    log_name(run),
                    None,
                )
            )
        findings.extend(_clock_findings(run, non_record))
    seeds = {run.seed for run in primary}
    if len(primary) < 3:
        findings.append(
            Finding(
                "L23",
                Severity.WARN,
                f"{len(primary)} scored seed(s) ({_seeds_text(seeds)}); records need at least three",
                None,
                None,
            )
        )
    counts = {run.val_tokens for run in runs if run.val_tokens is not None}
    if len(counts) > 1:
        listing = ", ".join(f"{log_name(r)}: {r.val_tokens:,}" for r in runs if r.val_tokens is not None)
        findings.append(Finding("L15", Severity.WARN, f"val token counts differ between runs ({listing})", None, None))
    return findings


def _seeds_text(seeds: set[int | None]) -> str:
    return ", ".join(str(s) for s in sorted(s for s in seeds if s is not None)) or "none named"


def _clock_findings(run: RunLog, non_record: bool = False) -> list[Finding]:
    findings = []
    name = log_name(run)
    other_clock = "submission.json marks the run non-record" if non_record else other_clock_reason(run)
    if run.train_time_s is not None and run.train_time_s > TIME_CAP_S and other_clock is not None:
        findings.append(
            Finding(
                "L20",
                Severity.WARN,
                f"train time {run.train_time_s:.3f} s is over 600 s, but {other_clock}: not evidence of an "
                "overrun of the 8xH100 10-minute clock; a record's scored runs need that clock",
                name,
                run.line_of("train_time_s"),
            )
        )
    elif run.train_time_s is not None and run.train_time_s > TIME_CAP_S:
        overshoot = run.train_time_s - TIME_CAP_S
        two_steps = 2 * ((run.step_avg_ms / 1000.0) if run.step_avg_ms else DEFAULT_STEP_S)
        if overshoot > max(two_steps, CERTAIN_OVERSHOOT_S):
            findings.append(
                Finding(
                    "L20",
                    Severity.FAIL,
                    f"train time {run.train_time_s:.3f} s is over the 600 s budget",
                    name,
                    run.line_of("train_time_s"),
                )
            )
        elif overshoot > two_steps:
            findings.append(
                Finding(
                    "L20",
                    Severity.WARN,
                    f"train time {run.train_time_s:.3f} s runs past 600 s by more than the step that crossed the cap",
                    name,
                    run.line_of("train_time_s"),
                )
            )
        else:
            findings.append(
                Finding(
                    "L20",
                    Severity.INFO,
                    f"train time {run.train_time_s:.3f} s: stopped by the "
                    "wall-clock check on the step that crossed 600 s",
                    name,
                    run.line_of("train_time_s"),
                )
            )
    if run.eval_time_s is not None and run.eval_time_s > TIME_CAP_S:
        findings.append(
            Finding(
                "L20",
                Severity.FAIL,
                f"eval time {run.eval_time_s:.1f} s is over the 600 s budget",
                name,
                run.line_of("eval_time_s"),
            )
        )
    if run.train_time_s is not None and run.hessian_time_s is not None:
        end = run.train_time_s + run.hessian_time_s
        if end > TIME_CAP_S:
            findings.append(
                Finding(
                    "L19",
                    Severity.WARN,
                    f"GPTQ Hessians read training data until about {end:.1f} s "
                    f"(train {run.train_time_s:.1f} s + {run.hessian_time_s:.1f} s), after the 600 s "
                    "training clock",
                    name,
                    run.line_of("hessian_time_s"),
                )
            )
    return findings


CAP_REACHED_S = TIME_CAP_S - 1.0  # a train time this close to 600 s left no time for anything after it


def check_calibration_clock(
    runs: list[RunLog], calibrations: tuple[tuple[str, str | None, int | None], ...]
) -> list[Finding]:
    """L19: the training loop ran to the 600 s wall-clock cap (no time reserved) and the script then calibrates
    GPTQ on the training shards, so training data is read after the training clock (#593, #569; the 2026-03-27
    ruling). One finding, at the calibration, naming the run that shows it; runs of another clock are skipped."""
    if not calibrations:
        return []
    capped = [
        run
        for run in runs
        if run.train_time_s is not None and run.train_time_s >= CAP_REACHED_S and other_clock_reason(run) is None
    ]
    if not capped:
        return []
    run = capped[0]
    name, file, line = calibrations[0]
    return [
        Finding(
            "L19",
            Severity.FAIL,
            f"`{name}` calibrates GPTQ on the training shards after a training loop that ran to the wall-clock cap "
            f"({log_name(run)}: train time {run.train_time_s:.1f} s, nothing reserved): training data is read after "
            "the 600 s training clock; reserve the calibration's time inside it (the 2026-03-27 ruling, #593/#569)",
            file,
            line,
        )
    ]


RECORD_GPUS = 8


def other_clock_reason(run: RunLog) -> str | None:
    """Why the log's train time is not the 8xH100 600 s record clock, from the log's own settings, or None.

    A log that sets its own wall-clock cap above 600 s (``max_wallclock_seconds:2400`` on 2 GPUs: the same
    GPU-seconds as 8 x 600 s) or ran on fewer than eight GPUs is a run of another clock, not an overrun.
    """
    cap = _number_setting(run, "max_wallclock_seconds")
    gpus = _number_setting(run, "world_size")
    if cap is not None and cap > TIME_CAP_S + CERTAIN_OVERSHOOT_S:
        where = f" on {int(gpus)} GPU(s)" if gpus is not None else ""
        scaled = gpus is not None and gpus * cap <= RECORD_GPUS * TIME_CAP_S * 1.001
        extra = f", the GPU-seconds of {RECORD_GPUS} x 600 s" if scaled else ""
        return f"the log sets its own wall-clock cap of {cap:g} s{where}{extra}"
    if gpus is not None and gpus < RECORD_GPUS:
        return f"the log ran on {int(gpus)} GPU(s), not the {RECORD_GPUS} a record's clock is timed on"
    return None


def _number_setting(run: RunLog, key: str) -> float | None:
    value = run.hyperparameters.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_submission(
    submission: Submission, runs: list[RunLog], primary: list[RunLog], code: CodeCount | None
) -> list[Finding]:
    """submission.json against the logs: per-seed scores and bytes, the mean, the byte totals."""
    findings = []
    where = submission.path.name
    for claim in submission.seed_claims():
        same_seed = [r for r in runs if r.seed == claim.seed and r.has_score]
        if not same_seed:
            findings.append(
                Finding(
                    "L23",
                    Severity.WARN,
                    f"{claim.where} claims seed {claim.seed}, which no log in the folder shows",
                    where,
                    submission.line_of(*claim.where.split("."), str(claim.seed)),
                )
            )
            continue
        if claim.val_bpb is not None and not any(agrees(claim.val_bpb, r.val_bpb) for r in same_seed):
            logged = ", ".join(f"{r.val_bpb:.8f} ({log_name(r)})" for r in same_seed)
            findings.append(
                Finding(
                    "L22",
                    Severity.WARN,
                    f"{claim.where}[{claim.seed}].val_bpb = {claim.val_bpb} but the log says {logged}",
                    where,
                    submission.line_of(*claim.where.split("."), str(claim.seed), "val_bpb"),
                )
            )
        if claim.artifact_bytes is not None and not any(
            claim.artifact_bytes in (r.artifact_bytes, r.total_bytes) for r in same_seed
        ):
            findings.append(
                Finding(
                    "L22",
                    Severity.WARN,
                    f"{claim.where}[{claim.seed}].artifact_bytes = "
                    f"{claim.artifact_bytes:,} matches no byte count in its log",
                    where,
                    submission.line_of(*claim.where.split("."), str(claim.seed), "artifact_bytes"),
                )
            )
    findings.extend(_check_mean(submission, primary))
    findings.extend(_check_bytes(submission, runs, code))
    return findings


def _check_mean(submission: Submission, primary: list[RunLog]) -> list[Finding]:
    claimed = submission.number("val_bpb")
    scores = [r.val_bpb for r in primary if r.val_bpb is not None]
    if claimed is None or not scores:
        return []
    mean = sum(scores) / len(scores)
    if agrees(claimed, mean, slack=1e-6):
        return []
    return [
        Finding(
            "L22",
            Severity.WARN,
            f"val_bpb = {claimed} but the mean of the logged seeds is {mean:.8f}",
            submission.path.name,
            submission.top_level_line("val_bpb"),
        )
    ]


def _check_bytes(submission: Submission, runs: list[RunLog], code: CodeCount | None) -> list[Finding]:
    findings = []
    total = submission.number("bytes_total")
    code_sizes = {code.shipped, code.counted} if code else set()
    known_totals = {r.total_bytes for r in runs} | {
        r.artifact_bytes + size for r in runs if r.artifact_bytes for size in code_sizes
    }
    if total is not None and int(total) not in known_totals:
        findings.append(
            Finding(
                "L22",
                Severity.WARN,
                f"bytes_total = {int(total):,} matches no run's total",
                submission.path.name,
                submission.top_level_line("bytes_total"),
            )
        )
    code = submission.number("bytes_code")
    known_code = {r.code_bytes for r in runs} | code_sizes
    if code is not None and int(code) not in known_code:
        findings.append(
            Finding(
                "L22",
                Severity.WARN,
                f"bytes_code = {int(code):,} matches neither the shipped train_gpt.py nor a logged code size",
                submission.path.name,
                submission.top_level_line("bytes_code"),
            )
        )
    return findings


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, kept = set(), []
    for finding in findings:
        key = (finding.rule, finding.message)
        if key not in seen:
            seen.add(key)
            kept.append(finding)
    return kept
