"""``golfc verify DIR``: rerun a submission once per seed under torchrun and judge the runs (docs/verify.md).

The work is in :func:`verify_submission` (tests call it); :func:`verify` is the typer command around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from golfc import __version__
from golfc.audit.logs import RunLog, parse_log
from golfc.console import console, err_console
from golfc.errors import GolfcError
from golfc.testing import TINY_RUN_ENV
from golfc.verify.checks import (
    Denominator,
    clock_checks,
    denominator_check,
    find_artifact,
    paths_from_log,
    recompute_denominator,
    run_check,
    score_ledger_check,
    size_check,
)
from golfc.verify.findings import CheckResult
from golfc.verify.ledger import access_findings, last_read, read_ledger, summarize_access
from golfc.verify.report import (
    checks_table,
    load_reference,
    markdown,
    overall,
    plot_curves,
    statistics,
    summary_table,
)
from golfc.verify.runs import Limits, SeedRun, network_isolation, run_all
from golfc.verify.valindep import val_independence

# The probe checks of golfc/verify/causality.py (its CHECKS; kept here so that names are checked before any run).
PROBE_CHECKS = ("causality", "normalization", "target", "batch", "documents")
RUN_CHECKS = ("val_independence",)
DEFAULT_SEEDS = "1337,42,2024"
TINY_ITERATIONS = "20"


def probe_checks() -> tuple[str, ...]:
    """The probe module's own list when it is installed, else the documented one."""
    try:
        from golfc.verify.causality import CHECKS
    except ImportError:
        return PROBE_CHECKS
    return tuple(CHECKS)


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise GolfcError(f"--seeds {text!r}: expected distinct non-negative integers separated by commas, e.g. "
                         f"{DEFAULT_SEEDS}")
    return seeds


def parse_checks(text: str) -> list[str]:
    known = (*probe_checks(), *RUN_CHECKS)
    if text.strip() == "all":
        return list(known)
    if text.strip() == "none":
        return []
    names = [part.strip() for part in text.split(",")]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise GolfcError(f"--checks {text!r}: unknown check {', '.join(unknown) or '(empty)'}; expected all, none or "
                         f"comma-separated names from {', '.join(known)}")
    return list(dict.fromkeys(names))


def parse_gpu_sets(options: Sequence[str]) -> list[tuple[int, ...]]:
    sets: list[tuple[int, ...]] = []
    for option in options:
        try:
            ids = tuple(int(part) for part in option.split(","))
        except ValueError:
            ids = ()
        if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
            raise GolfcError(f"--gpus {option!r}: expected GPU indices separated by commas, e.g. 0,1,2,3")
        sets.append(ids)
    flat = [i for ids in sets for i in ids]
    if len(set(flat)) != len(flat):
        raise GolfcError(f"--gpus {' '.join(options)}: the GPU sets overlap; expected disjoint sets, one per "
                         "side-by-side run")
    if len({len(ids) for ids in sets}) > 1:
        raise GolfcError(f"--gpus {' '.join(options)}: the GPU sets differ in size; expected one size (= --nproc)")
    return sets


def parse_env(items: Sequence[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise GolfcError(f"--env {item!r}: expected NAME=VALUE")
        result[name.strip()] = value
    return result


@dataclass
class VerifyOptions:
    """Everything a verification needs, checked (the command builds it from its options)."""

    folder: Path
    seeds: list[int]
    nproc: int = 1
    gpu_sets: list[tuple[int, ...]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    tiny: bool = False
    limits: Limits = field(default_factory=Limits)
    isolate_network: bool = True
    reference: Any = None  # (Sample, source) or None
    tolerance: float = 0.0
    progress: bool = True

    @property
    def program(self) -> Path:
        return self.folder / "train_gpt.py"

    @property
    def out(self) -> Path:
        return self.folder / "verify"

    @property
    def golfc_build(self) -> bool:
        return (self.folder / "golfc.lock").is_file()


def check_folder(folder: Path) -> Path:
    if not folder.exists():
        raise GolfcError(f"{folder}: no such folder; expected a golfc build output or a submission folder")
    if not folder.is_dir():
        raise GolfcError(f"{folder}: is a file; expected a folder holding train_gpt.py")
    if not (folder / "train_gpt.py").is_file():
        raise GolfcError(f"{folder}: no train_gpt.py; expected a golfc build output or a submission folder "
                         "holding train_gpt.py")
    if (folder / "verify").exists() and not (folder / "verify").is_dir():
        raise GolfcError(f"{folder / 'verify'}: is a file; golfc verify writes its runs and report in that folder")
    return folder.resolve()


def run_env(options: VerifyOptions) -> dict[str, str]:
    """The runs' environment: this process's, then the tiny CPU settings (``--tiny``), then ``--env``."""
    env = dict(os.environ)
    if options.tiny:
        env.update(TINY_RUN_ENV)
        env["ITERATIONS"] = TINY_ITERATIONS
    env.update(options.env)
    for name in ("DATA_PATH", "TOKENIZER_PATH"):  # the runs' working directory is not golfc's
        if env.get(name) and not os.path.isabs(env[name]):
            env[name] = os.path.abspath(env[name])
    return env


def watched_folders(env: Mapping[str, str]) -> list[Path]:
    out = []
    if env.get("DATA_PATH"):
        out.append(Path(env["DATA_PATH"]))
    if env.get("TOKENIZER_PATH"):
        out.append(Path(env["TOKENIZER_PATH"]).parent)
    return out


class LiveProgress:
    """A rich progress bar per seed on stderr, fed by the step lines of the runs."""

    def __init__(self, seeds: Sequence[int], enabled: bool) -> None:
        self.progress = Progress(TextColumn("seed {task.fields[seed]:>6}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err_console,
                                 disable=not enabled)
        self.tasks = {s: self.progress.add_task("", total=None, seed=s, info="waiting", start=False) for s in seeds}
        self.lock = threading.Lock()

    def line(self, run: SeedRun, _line: str) -> None:
        t = run.tracker
        task = self.tasks[run.seed]
        with self.lock:
            self.progress.start_task(task)
            phase = "eval" if t.state == "eval" else t.state
            loss = f" loss {t.last_train_loss:.4f}" if t.last_train_loss is not None else ""
            self.progress.update(task, total=t.iterations, completed=t.step or 0, info=f"{phase}{loss}")

    def done(self, run: SeedRun) -> None:
        with self.lock:
            self.progress.update(self.tasks[run.seed], info=run.status + (f": {run.killed_reason}"
                                                                          if run.killed_reason else ""))
            self.progress.stop_task(self.tasks[run.seed])


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def seed_result(run: SeedRun, options: VerifyOptions, env: Mapping[str, str],
                denominators: dict[tuple, tuple[Denominator | None, str]]) -> tuple[dict[str, Any],
                                                                                    list[CheckResult]]:
    """One seed's row of the report and its checks."""
    log: RunLog | None = None
    if run.console.is_file() and run.console.stat().st_size:
        log = parse_log(run.console)
    program_log = run.workdir / "logs" / f"verify_seed{run.seed}.txt"
    hooked = run.ledger_dir.is_dir() and any(run.ledger_dir.glob("ledger.*.jsonl"))
    rows = summarize_access(read_ledger(run.ledger_dir, run.launched_at), run.tracker, env.get("DATA_PATH")) \
        if run.ledger_dir.is_dir() else []
    artifact = find_artifact(run.workdir)
    checks = [run_check(run, log)]
    if run.status in ("ok", "killed", "failed"):
        checks += clock_checks(run, log, options.limits, options.nproc)
        checks.append(size_check(run, log, options.program))
        checks += access_findings(run.seed, rows, hooked)
        if log is not None and log.has_score:
            denominator, why = _denominator(log, env, run.workdir, denominators)
            checks.append(denominator_check(run.seed, log, denominator, why))
            checks.append(score_ledger_check(run.seed, run.console.read_text(encoding="utf-8", errors="replace")))
    size = next((c.details for c in checks if c.name == "size"), {})
    row = {
        "seed": run.seed, "status": run.status, "returncode": run.returncode, "killed_reason": run.killed_reason,
        "gpus": list(run.gpus) if run.gpus is not None else None, "wall_s": round(run.wall_s, 3),
        "workdir": _relative(run.workdir, options.folder), "console": _relative(run.console, options.folder),
        "log": _relative(program_log if program_log.is_file() else run.console, options.folder),
        "val_bpb": log.val_bpb if log else None, "val_loss": log.val_loss if log else None,
        "score_label": log.score_label if log else None, "steps": log.steps if log else None,
        "iterations": log.iterations if log else None, "val_tokens": log.val_tokens if log else None,
        "train_time_s": log.train_time_s if log else None, "eval_time_s": log.eval_time_s if log else None,
        "train_wall_s": _round(run.tracker.train_wall_s()), "eval_wall_s": _round(run.tracker.eval_wall_s()),
        "artifact": _relative(artifact, options.folder) if artifact else None,
        "artifact_bytes": size.get("artifact_bytes"), "code_bytes": size.get("code_bytes"),
        "total_bytes": size.get("total_bytes"),
        "phases": [p.to_json() for p in run.tracker.phases(run.wall_s)],
        "last_train_read_s": last_read(rows, "train"), "data_access": rows,
        "curves": {"train": run.tracker.train_curve, "val": run.tracker.val_curve},
    }
    return row, checks


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _denominator(log: RunLog, env: Mapping[str, str], workdir: Path,
                 cache: dict[tuple, tuple[Denominator | None, str]]) -> tuple[Denominator | None, str]:
    """The recount for this run's data: the paths its log names (else the runs' environment), its scored count."""
    try:
        text = log.path.read_text(errors="replace")
    except OSError:
        text = ""
    known = {**{k: env[k] for k in ("DATA_PATH", "TOKENIZER_PATH", "VOCAB_SIZE") if env.get(k)},
             **paths_from_log(text, workdir)}
    seq_len = log.hyperparameters.get("train_seq_len") or env.get("TRAIN_SEQ_LEN") or 1024
    key = (known.get("DATA_PATH"), known.get("TOKENIZER_PATH"), known.get("VOCAB_SIZE"), log.val_tokens, seq_len)
    if key not in cache:
        if not known.get("DATA_PATH") or not known.get("TOKENIZER_PATH"):
            cache[key] = (None, "the log names no tokenizer_path/val_loader pattern and DATA_PATH, TOKENIZER_PATH "
                          "are not set: nothing to recount bytes from")
        else:
            try:
                vocab = int(known["VOCAB_SIZE"]) if known.get("VOCAB_SIZE") else None
                cache[key] = (recompute_denominator(known["DATA_PATH"], known["TOKENIZER_PATH"], vocab,
                                                    log.val_tokens, int(seq_len)), "")
            except (OSError, ValueError, RuntimeError) as exc:
                cache[key] = (None, f"could not recount: {exc}")
    return cache[key]


def run_probes(options: VerifyOptions, env: Mapping[str, str], artifact: Path | None) -> list[CheckResult]:
    """The causality probes of golfc/verify/causality.py on the first finished seed's artifact."""
    wanted = [c for c in options.checks if c in probe_checks()]
    if not wanted:
        return []
    try:
        from golfc.verify.causality import run_checks
    except ImportError as exc:
        return [CheckResult(name, "C1", "SKIP", f"probe module not available: {exc}") for name in wanted]
    (options.out / "probes").mkdir(parents=True, exist_ok=True)
    try:
        return list(run_checks(options.program, wanted, workdir=options.out / "probes", env=env, artifact=artifact,
                               tolerance=options.tolerance, nproc=options.nproc))
    except Exception as exc:  # a probe that refuses or breaks must not lose the seeds' results
        return [CheckResult("probes", "C1", "SKIP", f"the probes stopped: {type(exc).__name__}: {exc}")]


def build_report(options: VerifyOptions, runs: list[SeedRun], env: Mapping[str, str], network: str,
                 extra: list[CheckResult]) -> dict[str, Any]:
    seeds, checks, cache = [], [], {}
    for run in runs:
        if run.status == "pending":
            continue
        row, found = seed_result(run, options, env, cache)
        seeds.append(row)
        checks += found
    stats, stat_checks = statistics([s for s in seeds if s["status"] == "ok"], options.reference)
    checks += stat_checks + extra
    program = options.program.read_bytes()
    return {
        "golfc_version": __version__, "dir": str(options.folder), "golfc_build": options.golfc_build,
        "program": {"path": "train_gpt.py", "bytes": len(program), "sha256": hashlib.sha256(program).hexdigest()},
        "config": {"seeds": options.seeds, "nproc": options.nproc, "gpus": [list(g) for g in options.gpu_sets],
                   "env": options.env, "tiny": options.tiny, "checks": options.checks,
                   "limits": {"train_s": options.limits.train_s, "eval_s": options.limits.eval_s,
                              "hard_factor": options.limits.hard_factor}},
        "network": {"isolated": network.startswith("unshare"), "how": network},
        "hardware": hardware(options),
        "seeds": seeds, "statistics": stats,
        "checks": [c.to_json() for c in checks],
        "verdict": overall(checks),
    }


def hardware(options: VerifyOptions) -> str:
    """``8xNVIDIA H100 80GB HBM3`` from nvidia-smi, or ``CPU`` (tiny runs and machines without a GPU)."""
    import shutil
    import subprocess

    if options.tiny or shutil.which("nvidia-smi") is None:
        return "CPU"
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=20, check=False).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    name = next((n.strip() for n in names if n.strip()), "unknown GPU")
    return f"{options.nproc}x{name}"


def write_report(options: VerifyOptions, report: dict[str, Any], plot: bool = True) -> None:
    options.out.mkdir(parents=True, exist_ok=True)
    if plot:
        report["plot"] = plot_curves(report, options.out / "loss_curves.png")
        if report["plot"] is None:
            err_console.print("[yellow]warning:[/] matplotlib is not importable: no loss_curves.png")
    (options.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (options.out / "report.md").write_text(markdown(report))


def verify_submission(options: VerifyOptions) -> tuple[dict[str, Any], bool]:
    """Run every seed, then the probes and val-independence; write the report. Returns (report, interrupted)."""
    env = run_env(options)
    prefix, network = network_isolation() if options.isolate_network else (None, "off (--no-isolate-network)")
    if prefix is None and options.isolate_network:
        err_console.print(f"[yellow]warning:[/] the runs have network access: {network}")
        network = f"not isolated: {network}"
    options.out.mkdir(parents=True, exist_ok=True)
    # a program's default paths are relative (./data/datasets/…): they mean what they mean where golfc started
    here = Path.cwd() / "data"
    links = {"data": here} if here.is_dir() and not env.get("DATA_PATH") else {}
    runs = [SeedRun(seed, options.out / f"seed_{seed}", links=links) for seed in options.seeds]
    live = LiveProgress(options.seeds, options.progress)
    lock = threading.Lock()

    def done(run: SeedRun) -> None:
        live.done(run)
        with lock:  # a report after every seed: a killed golfc keeps what finished
            write_report(options, build_report(options, runs, env, network, []), plot=False)

    interrupted = False
    with live.progress:
        try:
            run_all(runs, options.program, options.nproc, env, options.limits, isolate=prefix,
                    watch=watched_folders(env), gpu_sets=options.gpu_sets or None, on_line=live.line, on_done=done)
        except KeyboardInterrupt:
            interrupted = True
            for run in runs:
                if run.status in ("pending", "running"):
                    run.status = "interrupted"
    extra = [CheckResult("network", "NET", "PASS" if prefix else "WARN",
                         f"runs in a new network namespace: {network}" if prefix else f"runs had network: {network}")]
    own: dict[str, float] = {}  # verify's own work outside the seed runs, in seconds (its overhead)

    def timed(name: str, work: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return work(*args, **kwargs)
        finally:
            own[name] = round(time.perf_counter() - start, 3)

    if not interrupted:
        finished = next((r for r in runs if r.status == "ok" and find_artifact(r.workdir)), None)
        start = time.perf_counter()
        # val-independence trains tiny CPU runs while the probes score on the run's device: side by side
        with ThreadPoolExecutor(1) as pool:
            independence = None
            if "val_independence" in options.checks:
                independence = pool.submit(timed, "val_independence", val_independence, options.program, env,
                                           options.out / "val_independence", golfc_build=options.golfc_build)
            extra += timed("probes", run_probes, options, env, find_artifact(finished.workdir) if finished else None)
            if independence is not None:
                extra.append(independence.result())
        own["together"] = round(time.perf_counter() - start, 3)
    report = build_report(options, runs, env, network, extra)
    report["interrupted"] = interrupted
    report["own_seconds"] = own
    write_report(options, report)
    return report, interrupted


def _terminate(_signum: int, _frame: object) -> None:
    """SIGTERM ends a verification as Ctrl-C does: the running seeds are stopped, finished ones reported."""
    raise KeyboardInterrupt


def verify(
    folder: Path = typer.Argument(..., help="A golfc build output or a submission folder holding train_gpt.py."),
    seeds: str = typer.Option(DEFAULT_SEEDS, "--seeds", help="Seeds, comma-separated: one run each."),
    nproc: int | None = typer.Option(None, "--nproc", help="Processes per run (torchrun); default 1, or the size "
                                     "of a --gpus set."),
    gpus: list[str] = typer.Option([], "--gpus", help="A GPU set for one run at a time, e.g. 0,1,2,3 (repeat for "
                                   "side-by-side runs on disjoint sets)."),
    checks: str = typer.Option("all", "--checks", help="Probe checks and val_independence: all, none, or "
                               f"comma-separated from {', '.join((*PROBE_CHECKS, *RUN_CHECKS))}."),
    json_: bool = typer.Option(False, "--json", help="Print report.json to stdout instead of the tables."),
    env_items: list[str] = typer.Option([], "--env", help="NAME=VALUE for the runs (repeatable)."),
    tiny: bool = typer.Option(False, "--tiny", "--cpu", help="Tiny CPU config (DEVICE=cpu, 2 layers, 20 steps)."),
    train_limit: float = typer.Option(600.0, "--train-limit", help="Training clock limit, seconds."),
    eval_limit: float = typer.Option(600.0, "--eval-limit", help="Evaluation clock limit, seconds."),
    hard_limit: float = typer.Option(1.5, "--hard-limit", help="Stop a run whose training, evaluation or whole "
                                     "run passes this many times its limit(s)."),
    against: str | None = typer.Option(None, "--against", help="Reference: a verify report.json, a submission.json "
                                       "or a submission folder."),
    against_values: str | None = typer.Option(None, "--against-values", help="Reference val_bpb values, e.g. "
                                              "1.0611,1.0614."),
    tolerance: float = typer.Option(0.0, "--tolerance", help="Probe tolerance for GPU kernels (0: bit-identical)."),
    isolate_network: bool = typer.Option(True, "--isolate-network/--no-isolate-network",
                                         help="Run in a new network namespace (unshare -rn) where possible."),
) -> None:
    """Rerun a submission once per seed under torchrun and check clocks, sizes, data access, statistics and
    causality; writes DIR/verify/report.json, report.md and loss_curves.png.

    Exit code 0 for PASS or WARN, 1 for FAIL, 2 for bad input, 130 when interrupted (finished seeds are kept).
    """
    root = check_folder(folder)
    gpu_sets = parse_gpu_sets(gpus)
    if nproc is None:
        nproc = len(gpu_sets[0]) if gpu_sets else 1
    if nproc < 1 or 8 % nproc != 0:
        raise GolfcError(f"--nproc {nproc}: expected 1, 2, 4 or 8 (it must divide 8)")
    if gpu_sets and len(gpu_sets[0]) != nproc:
        raise GolfcError(f"--nproc {nproc} with --gpus sets of {len(gpu_sets[0])}: expected one GPU per process")
    if tolerance < 0:
        raise GolfcError(f"--tolerance {tolerance}: expected 0 (bit-identical) or a positive NLL difference")
    if train_limit <= 0 or eval_limit <= 0 or hard_limit < 1:
        raise GolfcError("--train-limit/--eval-limit: expected positive seconds; --hard-limit: a factor >= 1")
    options = VerifyOptions(
        folder=root, seeds=parse_seeds(seeds), nproc=nproc, gpu_sets=gpu_sets, checks=parse_checks(checks),
        env=parse_env(env_items), tiny=tiny, limits=Limits(train_limit, eval_limit, hard_limit),
        isolate_network=isolate_network, reference=load_reference(against, against_values), tolerance=tolerance,
        progress=not json_ and sys.stderr.isatty(),
    )
    previous = signal.signal(signal.SIGTERM, _terminate)  # `timeout`, a batch scheduler: stop the runs cleanly
    try:
        report, interrupted = verify_submission(options)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(summary_table(report))
        console.print(checks_table(report["checks"]))
        console.print(f"report: {options.out / 'report.json'}, {options.out / 'report.md'}")
    if interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if report["verdict"] == "FAIL" else 0)
