"""Run one program as a child process and keep its console: the bench tools' one way to start a training run.

The child starts a process group of its own, and a timeout kills the whole group. Inductor's compile workers inherit
the console pipe, so killing only the child would leave the reader waiting for their end. `subprocess.run(...,
timeout=...)` has exactly that problem, and on the device it can cost a whole call. Each line is kept as printed and
again with the seconds since the start at which it arrived, which shows where a run spent its time (compile, warmup,
training, serialisation, each evaluation), also for a run stopped at its timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Console:
    """What a run printed (stdout and stderr together), and how it ended."""

    output: str
    timed: str  # the same lines, each after "  SECONDS s | "
    returncode: int
    timed_out: bool
    wall_s: float


def stop_group(pid: int) -> None:
    """Kill a program's process group; one that has just ended is left alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_console(args: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> Console:
    """Run `args` in `cwd` with `env` (the whole environment), at most `timeout_s` seconds."""
    started = time.perf_counter()
    lines, timed = [], []
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    timer = threading.Timer(timeout_s, stop_group, (proc.pid,))
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            timed.append(f"{time.perf_counter() - started:8.1f}s | {line}")
        proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
    wall = time.perf_counter() - started
    timed_out = proc.returncode == -signal.SIGKILL and wall >= timeout_s  # stopped by the timer
    return Console("".join(lines), "".join(timed), proc.returncode, timed_out, round(wall, 1))
