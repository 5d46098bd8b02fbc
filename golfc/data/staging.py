"""Writing a group of output files all or nothing, and checking an output root before any slow work.

New files are written into a staging directory beside their target directory (so the final rename never crosses a
file system) and take their final names only in ``commit``, once every one of them is complete. ``commit`` moves
each previous file aside before installing its replacement and puts everything back if a rename fails, so a failed
or interrupted build leaves the previous files exactly as they were; ``discard`` then removes what was staged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from golfc.data.errors import DataError

STAGING_PREFIX = ".golfc-staging-"
PARTIAL_SUFFIX = ".partial"
REPLACED_DIR = "replaced"


def check_output_root(out: Path) -> None:
    """``out`` (or, if it does not exist yet, its nearest existing parent) must be a writable directory."""
    for candidate in (out, *out.parents):
        if not candidate.exists():
            continue
        if not candidate.is_dir():
            expected = "a directory (or a new path) for -o" if candidate == out else f"a directory to hold -o {out}"
            raise DataError(f"{candidate}: is an existing file, cannot write there; expected {expected}")
        if not os.access(candidate, os.W_OK | os.X_OK):
            raise DataError(f"{candidate}: cannot write (permission denied); expected a writable directory for -o")
        return


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
                raise DataError(
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
        try:
            for step in reversed(journal):
                if step.backup is not None:
                    os.replace(step.backup, step.target)
                elif step.installed:
                    step.target.unlink()
        except OSError as exc:
            self._keep_staging = True  # the previous files that could not be put back are still in there
            kept = ", ".join(str(path) for path in self._staging_dirs.values())
            raise DataError(
                f"{exc.filename}: cannot restore the previous file ({exc.strerror}); the previous files are in {kept}"
            ) from None


def _refuse_directory_targets(targets: list[Path]) -> None:
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            raise DataError(f"{target}: is a directory; expected a file there (or nothing), remove it first")
