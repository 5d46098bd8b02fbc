"""Progress reporting for long data steps: a protocol the library calls, and a rich implementation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class StepProgress(Protocol):
    """Told when a step starts (``total`` None = no known length) and how far it got."""

    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...


class SilentProgress:
    """Reports nothing (the default for library calls)."""

    def start(self, description: str, total: int | None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


class RichProgress:
    """One rich progress row per step; the previous step is marked complete when the next starts."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None) -> None:
        self._finish_current()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def _finish_current(self) -> None:
        if self._task is None:
            return
        task = self._progress.tasks[-1]
        self._progress.update(self._task, total=task.total or 1, completed=task.total or 1)

    def finish(self) -> None:
        self._finish_current()
        self._task = None


@contextmanager
def rich_progress(console: Console | None = None) -> Iterator[RichProgress]:
    """A RichProgress shown on ``console`` (stderr by default) while the block runs; cleared if it fails."""
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    target = console or Console(stderr=True)
    # Off when not on a terminal (logs, pipes, tests): a bar frozen in a log is noise, and an error stays one line.
    with Progress(*columns, console=target, disable=not target.is_terminal) as progress:
        reporter = RichProgress(progress)
        try:
            yield reporter
        except BaseException:
            progress.live.transient = True  # clear the bars so the error line stands alone
            raise
        reporter.finish()
