"""Output files of a golfc command: the check of an output root, and installing a group of files all or nothing.

``check_output_root`` runs before any slow work: the output root named by ``-o``/``--out`` (or its nearest existing
parent, when it does not exist yet) must be a folder golfc can write into. ``StagedFiles`` writes new files into a
staging directory beside their target directory (so the final rename never crosses a file system); they take their
final names only in ``commit``, once every one of them is complete. ``commit`` moves each previous file aside before
installing its replacement and puts everything back if a rename fails, so a failed or interrupted command leaves the
previous files exactly as they were; ``discard`` then removes what was staged. ``golfc build`` and ``golfc data``
both use them; every error is an ``OutputError`` with a one-line message naming the path and what was expected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from golfc.errors import OutputError

STAGING_PREFIX = ".golfc-staging-"
PARTIAL_SUFFIX = ".partial"
REPLACED_DIR = "replaced"


def check_output_root(out: Path, option: str) -> None:
    """``out`` (or, if it does not exist yet, its nearest existing parent) must be a folder golfc can write into.

    ``option`` is the command-line option that named ``out`` (``--out``, ``-o``); each message starts with it and
    ``out``, then names the path in the way and what was expected.
    """
    for candidate in (out, *out.parents):
        if _exists(candidate, out, option):
            _check_writable_folder(candidate, out, option)
            return


def _exists(candidate: Path, out: Path, option: str) -> bool:
    """Whether ``candidate`` exists; a path that cannot even be looked at is refused."""
    try:
        return candidate.exists()
    except OSError as exc:
        raise OutputError(
            f"{option} {out}: cannot look at {candidate} ({exc.strerror or exc}); expected a folder golfc can reach"
        ) from None


def _check_writable_folder(candidate: Path, out: Path, option: str) -> None:
    """The existing ``candidate`` (``out`` itself or a parent of it) must be a folder golfc may create files in."""
    if not candidate.is_dir():
        raise OutputError(f"{option} {out}: {candidate} is a file; expected a folder")
    if not os.access(candidate, os.W_OK | os.X_OK):
        raise OutputError(
            f"{option} {out}: cannot write into {candidate} (permission denied); expected a writable folder"
        )


@dataclass
class _Replacement:
    """One step of a commit, as much as is needed to undo it."""

    target: Path
    backup: Path | None = None  # where the previous file went; None when there was none
    installed: bool = False  # whether a new file has taken the target's name


class StagedFiles:
    """New files for one or more directories, written under staging names and installed together by ``commit``."""

    def __init__(self) -> None:
        self._staging_dirs: dict[Path, Path] = {}
        self._keep_staging = False

    def directory_for(self, target_dir: Path) -> Path:
        """The staging directory (created on first use) whose files ``commit`` moves into ``target_dir``."""
        if target_dir not in self._staging_dirs:
            target_dir.mkdir(parents=True, exist_ok=True)
            self._staging_dirs[target_dir] = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target_dir))
        return self._staging_dirs[target_dir]

    def path_for(self, target: Path) -> Path:
        """Where to write the new content of ``target``."""
        return self.directory_for(target.parent) / target.name

    def target_of(self, path: Path) -> Path:
        """The final path that a staged (or half-written ``.partial``) file stands for; other paths stay as they are."""
        for target_dir, staging_dir in self._staging_dirs.items():
            if path.parent == staging_dir:
                return target_dir / path.name.removesuffix(PARTIAL_SUFFIX)
        return path

    def commit(self, remove: Sequence[Path] = ()) -> None:
        """Install every staged file under its final name and take ``remove`` away; all of it, or nothing."""
        installs: list[tuple[Path | None, Path]] = [*self._staged_files(), *((None, path) for path in remove)]
        _refuse_directory_targets([target for _, target in installs])
        journal: list[_Replacement] = []
        try:
            for staged, target in installs:
                self._replace(staged, target, journal)
        except BaseException as exc:
            self._roll_back(journal)
            if isinstance(exc, OSError):
                raise OutputError(
                    f"{journal[-1].target}: cannot replace it ({exc.strerror}); the previous files are unchanged"
                ) from None
            raise

    def discard(self) -> None:
        """Remove the staging directories: new files not installed, and after a commit the previous files."""
        if self._keep_staging:
            return
        for staging_dir in self._staging_dirs.values():
            shutil.rmtree(staging_dir, ignore_errors=True)
        self._staging_dirs.clear()

    def _staged_files(self) -> list[tuple[Path | None, Path]]:
        """(staged file, its final path) for every complete file in the staging directories, in name order."""
        return [
            (staged, target_dir / staged.name)
            for target_dir, staging_dir in self._staging_dirs.items()
            for staged in sorted(staging_dir.iterdir())
            if staged.is_file() and not staged.name.endswith(PARTIAL_SUFFIX)
        ]

    def _replace(self, staged: Path | None, target: Path, journal: list[_Replacement]) -> None:
        """Move the previous ``target`` aside (into the staging directory), then install ``staged`` if any."""
        step = _Replacement(target)
        journal.append(step)
        if target.exists() or target.is_symlink():
            backup_dir = self.directory_for(target.parent) / REPLACED_DIR
            backup_dir.mkdir(exist_ok=True)
            os.replace(target, backup_dir / target.name)
            step.backup = backup_dir / target.name
        if staged is not None:
            os.replace(staged, target)
            step.installed = True

    def _roll_back(self, journal: list[_Replacement]) -> None:
        """Undo the steps of a failed commit, last first; keep the staging directories if a previous file is stuck."""
        try:
            for step in reversed(journal):
                if step.backup is not None:
                    os.replace(step.backup, step.target)
                elif step.installed:
                    step.target.unlink()
        except OSError as exc:
            self._keep_staging = True  # the previous files that could not be put back are still in there
            kept = ", ".join(str(path) for path in self._staging_dirs.values())
            raise OutputError(
                f"{exc.filename}: cannot restore the previous file ({exc.strerror}); the previous files are in {kept}"
            ) from None


def _refuse_directory_targets(targets: list[Path]) -> None:
    """Refuse, before anything changes, a target that is a real directory: a file cannot replace it."""
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            raise OutputError(f"{target}: is a directory; expected a file there (or nothing), remove it first")
