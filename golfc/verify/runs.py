"""Running a submission once per seed under torchrun, with golfc's clocks, a hard limit and the ledgers.

Each seed runs in ``DIR/verify/seed_<s>/`` (its working directory: the program writes ``logs/`` and its
artifact there) as ``torchrun --standalone --nproc_per_node=N DIR/train_gpt.py`` in a process group of its own,
inside a new network namespace when the machine allows one (``unshare -rn``, loopback up). golfc stamps every
console line with its own wall clock (``console.txt`` keeps them, ``timeline.jsonl`` the times), follows the
phases as they happen, and stops the whole group (SIGTERM, then SIGKILL) when a phase passes its hard limit.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from golfc.verify.ledger import ledger_env
from golfc.verify.phases import PhaseTracker

KILL_GRACE_S = 5.0
LOOPBACK_UP = Path(__file__).with_name("loopback.py")  # run by path inside the namespace: lo up, then exec


@dataclass(frozen=True)
class Limits:
    """The challenge's clocks (seconds) and the factor past which golfc stops a run."""

    train_s: float = 600.0
    eval_s: float = 600.0
    hard_factor: float = 1.5

    @property
    def hard_train_s(self) -> float:
        return self.hard_factor * self.train_s

    @property
    def hard_eval_s(self) -> float:
        return self.hard_factor * self.eval_s

    @property
    def hard_total_s(self) -> float:
        """The whole run, set-up and compile included: the factor times both clocks."""
        return self.hard_factor * (self.train_s + self.eval_s)


@dataclass
class SeedRun:
    """What golfc saw of one seed's run."""

    seed: int
    workdir: Path
    gpus: tuple[int, ...] | None = None
    status: str = "pending"  # pending, running, ok, failed, killed, interrupted
    returncode: int | None = None
    launched_at: float = 0.0  # time.time() at launch
    wall_s: float = 0.0
    killed_reason: str | None = None
    tracker: PhaseTracker = field(default_factory=PhaseTracker)
    lines: int = 0
    command: list[str] = field(default_factory=list)
    links: dict[str, Path] = field(default_factory=dict)  # name in the working directory -> what it points to

    @property
    def console(self) -> Path:
        return self.workdir / "console.txt"

    @property
    def ledger_dir(self) -> Path:
        return self.workdir / "ledger"


@functools.cache
def _succeeds(command: tuple[str, ...]) -> bool:
    """Whether ``command`` exits 0 here (asked once per process)."""
    try:
        return subprocess.run(list(command), capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def network_isolation() -> tuple[list[str] | None, str]:
    """(command prefix that runs a command in a new network namespace with loopback up, how) or (None, why not).

    ``unshare -rn`` (a user namespace maps the caller to root inside, so no privileges are needed) where the
    kernel allows it; torchrun's rendezvous and gloo/NCCL between local ranks use the loopback, which is brought up.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "no unshare(1) on this machine"
    prefix = [unshare, "-rn", "--", sys.executable, str(LOOPBACK_UP)]
    if not _succeeds((*prefix, "true")):
        return None, "unshare -rn with the loopback brought up failed (user namespaces are not allowed here?)"
    smi = shutil.which("nvidia-smi")  # a GPU machine: the driver must answer inside the namespace as outside
    if smi and _succeeds((smi, "-L")) and not _succeeds((*prefix, smi, "-L")):
        return None, "the GPUs do not answer inside a new network namespace (nvidia-smi -L failed there)"
    return prefix, "unshare -rn (new network namespace, loopback only)"


def launcher(program: Path, nproc: int) -> list[str]:
    """torchrun (``python -m torch.distributed.run``) of the program, one node, ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(program)]


def run_seed(
    run: SeedRun,
    program: Path,
    nproc: int,
    env: Mapping[str, str],
    limits: Limits,
    *,
    isolate: list[str] | None,
    watch: list[Path],
    on_line: Callable[[SeedRun, str], None] | None = None,
    stop: threading.Event | None = None,
) -> SeedRun:
    """Run one seed to its end (or its hard limit, or ``stop``); fills ``run`` and returns it."""
    if run.workdir.exists():
        shutil.rmtree(run.workdir)
    run.ledger_dir.mkdir(parents=True)
    for name, target in run.links.items():
        (run.workdir / name).symlink_to(target, target_is_directory=target.is_dir())
    child_env = {**env, "SEED": str(run.seed), "RUN_ID": f"verify_seed{run.seed}"}
    child_env.update(ledger_env(run.ledger_dir, watch, env.get("PYTHONPATH")))
    if run.gpus is not None:
        child_env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, run.gpus))
    run.command = [*(isolate or []), *launcher(program, nproc)]
    run.status, run.launched_at = "running", time.time()
    timeline = (run.workdir / "timeline.jsonl").open("w", encoding="utf-8")
    console = run.console.open("w", encoding="utf-8")
    proc = subprocess.Popen(run.command, cwd=run.workdir, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                            start_new_session=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t = time.time() - run.launched_at
            console.write(line)
            console.flush()
            timeline.write(json.dumps({"t": round(t, 4), "line": line.rstrip("\n")}) + "\n")
            run.tracker.feed(t, line)
            run.lines += 1
            if on_line is not None:
                on_line(run, line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            reason = _over_limit(run, limits)
            if reason is None and stop is not None and stop.is_set():
                reason = "interrupted"
            if reason is not None:
                _stop_group(proc)
                run.killed_reason = reason
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        _stop_group(proc)
        run.killed_reason = "interrupted"
        raise
    finally:
        proc.wait()
        reader.join(timeout=10)
        run.wall_s = time.time() - run.launched_at
        run.returncode = proc.returncode
        console.close()
        timeline.close()
        if run.killed_reason == "interrupted":
            run.status = "interrupted"
        elif run.killed_reason is not None:
            run.status = "killed"
        else:
            run.status = "ok" if proc.returncode == 0 else "failed"
    return run


def _over_limit(run: SeedRun, limits: Limits) -> str | None:
    """Why the run must stop now (a phase or the whole run past its hard limit), or None."""
    now = time.time() - run.launched_at
    tracker = run.tracker
    training = tracker.train_wall_s(now)
    if training is not None and not tracker.training_over and training > limits.hard_train_s:
        return f"training ran {training:.1f} s, past the hard limit {limits.hard_train_s:.0f} s"
    if tracker.training_over:
        since = tracker.export_end if tracker.export_end is not None else tracker.train_end
        if since is not None and now - since > limits.hard_eval_s:
            return f"evaluation ran {now - since:.1f} s, past the hard limit {limits.hard_eval_s:.0f} s"
    if now > limits.hard_total_s:
        return f"the run took {now:.1f} s, past the hard limit {limits.hard_total_s:.0f} s"
    return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc). torchrun starts each rank in a session of its own, so the ranks
    are not in torchrun's process group: stopping a run signals them one by one as well."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(proc: subprocess.Popen, pids: set[int], sig: signal.Signals) -> None:
    for target in (lambda: os.killpg(proc.pid, sig), *(lambda p=p: os.kill(p, sig) for p in sorted(pids))):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            continue


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the run's process group and every process below it (torchrun and each rank), SIGKILL to all of
    them after a grace period (torchrun's own handler usually stops the ranks first)."""
    pids = set(descendants(proc.pid))
    _signal_all(proc, pids, signal.SIGTERM)
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    pids |= set(descendants(proc.pid))
    _signal_all(proc, {p for p in pids if _alive(p)}, signal.SIGKILL)
    proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_all(
    runs: Sequence[SeedRun],
    program: Path,
    nproc: int,
    env: Mapping[str, str],
    limits: Limits,
    *,
    isolate: list[str] | None,
    watch: list[Path],
    gpu_sets: Sequence[tuple[int, ...]] | None = None,
    on_line: Callable[[SeedRun, str], None] | None = None,
    on_done: Callable[[SeedRun], None] | None = None,
) -> None:
    """Every seed: one after another, or side by side, one queue per disjoint GPU set. On Ctrl-C every running
    seed is stopped and marked interrupted; finished seeds keep their results (the exception propagates)."""
    sets = list(gpu_sets or [None])  # type: ignore[list-item]
    queues: list[list[SeedRun]] = [[] for _ in sets]
    for i, run in enumerate(runs):
        run.gpus = sets[i % len(sets)]
        queues[i % len(sets)].append(run)
    stop = threading.Event()

    def worker(queue: list[SeedRun]) -> None:
        for run in queue:
            if stop.is_set():
                run.status = "interrupted"
                continue
            run_seed(run, program, nproc, env, limits, isolate=isolate, watch=watch, on_line=on_line, stop=stop)
            if on_done is not None:
                on_done(run)

    if len(queues) == 1:
        worker(queues[0])
        return
    threads = [threading.Thread(target=worker, args=(q,), daemon=True) for q in queues]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
        raise
