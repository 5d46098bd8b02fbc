"""The checks of a rerun that read one seed's log, files and clocks: run (did it finish), clocks (L20), size
(L22) and the BPB denominator (L17). Each returns :class:`CheckResult` lines naming the seed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from golfc.audit.logs import RunLog
from golfc.build import SIZE_LIMIT
from golfc.verify.findings import CheckResult
from golfc.verify.runs import Limits, SeedRun

DECIMALS = re.compile(r"\b(val_loss|val_bpb)[:=]\s*[-+]?\d+\.(\d+)")
TOKENIZER_LINE = re.compile(r"\btokenizer_path=(\S+)")
VAL_PATTERN_LINE = re.compile(r"^val_loader:shards pattern=(\S+)", re.M)
VOCAB_LINE = re.compile(r"\bvocab_size[=:](\d+)")


def paths_from_log(text: str, workdir: Path) -> dict[str, str]:
    """DATA_PATH, TOKENIZER_PATH and VOCAB_SIZE as the run's own log names them (the reference's and golfc's
    ``val_bpb:enabled … tokenizer_path=…`` and ``val_loader:shards pattern=…`` lines; ``vocab_size`` where a
    settings line prints it); relative paths are the run's, so they are resolved against its working directory."""
    found: dict[str, str] = {}
    if match := TOKENIZER_LINE.search(text):
        found["TOKENIZER_PATH"] = str(workdir / match.group(1))
    if match := VAL_PATTERN_LINE.search(text):
        found["DATA_PATH"] = str(workdir / Path(match.group(1)).parent)
    if match := VOCAB_LINE.search(text):
        found["VOCAB_SIZE"] = match.group(1)
    return found


def run_check(run: SeedRun, log: RunLog | None) -> CheckResult:
    """PASS when the run exited 0 with a score; FAIL (L20) when golfc stopped it, FAIL (INPUT) when it crashed."""
    details = {"seed": run.seed, "status": run.status, "returncode": run.returncode}
    if run.status == "killed":
        return CheckResult("run", "L20", "FAIL", f"seed {run.seed}: stopped by golfc: {run.killed_reason}", details)
    if run.status == "interrupted":
        return CheckResult("run", "INPUT", "SKIP", f"seed {run.seed}: interrupted before it finished", details)
    if run.status != "ok":
        return CheckResult("run", "INPUT", "FAIL", f"seed {run.seed}: exited with code {run.returncode} "
                           f"(see {run.console})", details)
    if log is None or not log.has_score:
        return CheckResult("run", "INPUT", "FAIL", f"seed {run.seed}: exited 0 but printed no val_bpb of the final "
                           "model", details)
    return CheckResult("run", "INPUT", "PASS", f"seed {run.seed}: finished in {run.wall_s:.1f} s, "
                       f"{log.score_label} val_bpb {log.val_bpb}", details)


def clock_checks(run: SeedRun, log: RunLog | None, limits: Limits, nproc: int) -> list[CheckResult]:
    """L20 from the log's markers (FAIL past a limit) and from golfc's own clock (WARN past a limit while the
    log's is inside: golfc's training clock also counts periodic validation, which the log's skips)."""
    out = []
    where = f"on {nproc} process(es)"
    for name, limit, logged, own in (
        ("train_clock", limits.train_s, log.train_time_s if log else None, run.tracker.train_wall_s()),
        ("eval_clock", limits.eval_s, log.eval_time_s if log else None, run.tracker.eval_wall_s()),
    ):
        details = {"seed": run.seed, "limit_s": limit, "log_s": logged,
                   "golfc_s": None if own is None else round(own, 3)}
        shown = (f"log {logged:.3f} s" if logged is not None else "log: no time") + (
            f", golfc's clock {own:.3f} s" if own is not None else ", golfc's clock: phase not seen")
        if logged is None and own is None:
            out.append(CheckResult(name, "L20", "SKIP", f"seed {run.seed}: no {name.split('_')[0]} phase seen",
                                   details))
        elif logged is not None and logged > limit:
            out.append(CheckResult(name, "L20", "FAIL", f"seed {run.seed}: {shown} > {limit:g} s {where}", details))
        elif own is not None and own > limit:
            out.append(CheckResult(name, "L20", "WARN", f"seed {run.seed}: {shown}: golfc's clock > {limit:g} s "
                                   f"{where}", details))
        else:
            out.append(CheckResult(name, "L20", "PASS", f"seed {run.seed}: {shown} <= {limit:g} s {where}", details))
    return out


def find_artifact(workdir: Path) -> Path | None:
    """The largest ``*.ptz`` the run wrote into its working directory (the scored artifact), else None."""
    found = sorted((p for p in workdir.glob("*.ptz") if p.is_file()), key=lambda p: p.stat().st_size)
    return found[-1] if found else None


def size_check(run: SeedRun, log: RunLog | None, program: Path) -> CheckResult:
    """L22: shipped train_gpt.py + this seed's artifact <= 16,000,000, and the log's own figures agree."""
    code = program.stat().st_size
    artifact = find_artifact(run.workdir)
    model = artifact.stat().st_size if artifact else None
    details: dict[str, object] = {"seed": run.seed, "code_bytes": code, "artifact": artifact.name if artifact else None,
                                  "artifact_bytes": model, "limit": SIZE_LIMIT}
    if model is None:
        logged = log.artifact_bytes if log else None
        if logged is None:
            return CheckResult("size", "L22", "SKIP", f"seed {run.seed}: no artifact (*.ptz) and no logged size",
                               details)
        model, details["artifact_bytes"] = logged, logged
        details["from_log"] = True
    total = code + model
    details["total_bytes"] = total
    mismatches = []
    if log is not None and artifact is not None:
        if log.artifact_bytes is not None and log.artifact_bytes != model:
            mismatches.append(f"log says artifact {log.artifact_bytes:,}, file has {model:,}")
        if log.code_bytes is not None and log.code_bytes != code:
            mismatches.append(f"log says code {log.code_bytes:,}, shipped train_gpt.py has {code:,}")
        if log.total_bytes is not None and log.total_bytes != total and log.code_bytes in (None, code):
            mismatches.append(f"log says total {log.total_bytes:,}, files add up to {total:,}")
    details["log_mismatches"] = mismatches
    text = f"seed {run.seed}: {code:,} code + {model:,} model = {total:,} bytes"
    if total > SIZE_LIMIT:
        return CheckResult("size", "L22", "FAIL", f"{text} > {SIZE_LIMIT:,}", details)
    if mismatches:
        return CheckResult("size", "L22", "WARN", f"{text}; {'; '.join(mismatches)}", details)
    return CheckResult("size", "L22", "PASS", f"{text} <= {SIZE_LIMIT:,} (log agrees)" if log and log.artifact_bytes
                       else f"{text} <= {SIZE_LIMIT:,}", details)


@dataclass(frozen=True)
class Denominator:
    """The BPB denominator golfc computes itself: scored targets and their UTF-8 bytes under the tokenizer."""

    tokens: int
    bytes: int
    source: str  # which count of targets: the log's val_tokens line or the TRAIN_SEQ_LEN cut

    @property
    def nats_per_bpb(self) -> float:
        """val_loss / val_bpb as it must be: ln 2 x bytes / tokens."""
        return math.log(2.0) * self.bytes / self.tokens


def recompute_denominator(data_path: str, tokenizer_path: str, vocab_size: int | None, targets: int | None,
                          seq_len: int) -> Denominator:
    """Bytes of the validation targets counted with golfc's run-time tables (``build_bpb_luts`` and
    ``target_bytes`` of golfc/runtime/data.py, the reference's rule): the first ``targets`` targets when the log
    says how many it scored, else the stream cut to a multiple of ``seq_len`` as the reference cuts it. Without
    ``vocab_size``, the tokenizer's own."""
    import os

    import sentencepiece as spm
    import torch

    from golfc.runtime.data import build_bpb_luts, load_validation_tokens, target_bytes

    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    vocab_size = vocab_size or sp.vocab_size()
    pattern = os.path.join(data_path, "fineweb_val_*.bin")
    if targets is None:
        stream, source = load_validation_tokens(pattern, seq_len, vocab_size), f"TRAIN_SEQ_LEN={seq_len} cut"
    else:
        stream, source = load_validation_tokens(pattern, 1, vocab_size)[: targets + 1], "the log's val token count"
    luts = build_bpb_luts(sp, vocab_size, torch.device("cpu"))
    stream = stream.to(torch.int64)
    nbytes = int(target_bytes(stream[:-1], stream[1:], luts).to(torch.int64).sum())
    return Denominator(int(stream.numel() - 1), nbytes, source)


def _printed_decimals(log: RunLog) -> tuple[int, int]:
    """Decimals of the val_loss and val_bpb printed on the score line (8 on an ``_exact`` line)."""
    line_no = log.line_of("val_bpb")
    if line_no is not None:
        try:
            with open(log.path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if number == line_no:
                        found = dict(DECIMALS.findall(line))
                        return len(found.get("val_loss", "0000")), len(found.get("val_bpb", "0000"))
        except OSError:
            pass
    return 4, 4


def denominator_check(seed: int, log: RunLog | None, denominator: Denominator | None, why_not: str = "") -> CheckResult:
    """L17: the run's val_loss/val_bpb ratio against ln 2 x bytes/tokens recomputed, within the printed digits."""
    details: dict[str, object] = {"seed": seed}
    if denominator is None:
        return CheckResult("bpb_denominator", "L17", "SKIP", f"seed {seed}: {why_not or 'not recomputed'}", details)
    if log is None or not log.val_bpb or not log.val_loss:
        return CheckResult("bpb_denominator", "L17", "SKIP", f"seed {seed}: the log printed no val_loss/val_bpb pair",
                           details)
    loss_digits, bpb_digits = _printed_decimals(log)
    ratio = log.val_loss / log.val_bpb
    # the printed values are rounded: the ratio is known to within the relative errors of both
    slack = ratio * (0.5 * 10**-loss_digits / log.val_loss + 0.5 * 10**-bpb_digits / log.val_bpb) + 1e-12
    expected = denominator.nats_per_bpb
    details.update(tokens=denominator.tokens, bytes=denominator.bytes, counted_by=denominator.source,
                   expected_nats_per_bpb=round(expected, 10), run_nats_per_bpb=round(ratio, 10), slack=slack,
                   implied_bytes=round(ratio * denominator.tokens / math.log(2.0)))
    text = (f"seed {seed}: {denominator.tokens:,} targets, {denominator.bytes:,} bytes: val_loss/val_bpb must be "
            f"{expected:.8f}, the run's is {ratio:.8f}")
    if abs(ratio - expected) <= slack:
        return CheckResult("bpb_denominator", "L17", "PASS", f"{text} (within {slack:.1e})", details)
    verdict = "FAIL" if denominator.source.startswith("the log") else "WARN"
    implied = details["implied_bytes"]
    return CheckResult("bpb_denominator", "L17", verdict, f"{text}: the run divided by {implied:,} bytes", details)


SCORE_LEDGER_LINE = re.compile(r"^score_ledger scored:(\d+) adapted:(\d+) declared:(\d+) violations:(\d+)\s*$", re.M)


def score_ledger_check(seed: int, console: str) -> CheckResult:
    """L2 from the score ledger a golfc program logs after its final evaluation (core/data): every score an
    optimizer update fed must come from updates computed on earlier targets only. FAIL on any violation; WARN when
    the scorer stepped an optimizer but declared nothing it learned from (the ledger cannot tell; the probes can);
    SKIP where no ledger line was printed (a hand-written program, or a golfc build older than the ledger)."""
    found = SCORE_LEDGER_LINE.findall(console)
    if not found:
        return CheckResult("score_ledger", "L2", "SKIP", f"seed {seed}: the run printed no score_ledger line "
                           "(not a golfc program with the score ledger)", {"seed": seed})
    scored, adapted, declared, violations = (int(v) for v in found[-1])
    details = {"seed": seed, "scored": scored, "adapted": adapted, "declared": declared, "violations": violations}
    text = f"seed {seed}: {scored:,} targets scored, {adapted:,} after an evaluation-time update"
    if violations:
        return CheckResult("score_ledger", "L2", "FAIL", f"{text}; {violations:,} of them after an update computed "
                           "from the target itself or a later one (score-first broken)", details)
    if adapted and not declared:
        return CheckResult("score_ledger", "L2", "WARN", f"{text}, but the scorer declared no position its updates "
                           "learned from: the ledger cannot check score-first (the causality probes can)", details)
    if adapted:
        text += "; every update learned only from earlier targets"
    return CheckResult("score_ledger", "L2", "PASS", text, details)
