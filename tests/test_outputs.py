"""golfc.outputs: the output-root check shared by `golfc build`, `golfc demo` and `golfc data`, and StagedFiles."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from golfc.errors import GolfcError, OutputError
from golfc.outputs import STAGING_PREFIX, StagedFiles, check_output_root


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (staging folders included) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stage(staging: StagedFiles, target: Path, text: str) -> None:
    staging.path_for(target).write_text(text, encoding="utf-8")


def test_output_error_is_a_golfc_error() -> None:
    """Both CLIs turn a GolfcError into one `error:` line and exit code 2."""
    assert issubclass(OutputError, GolfcError)


@pytest.mark.parametrize("out", ["new", "new/deeper/still", "."])
def test_a_folder_or_a_new_path_under_one_is_accepted_and_nothing_is_created(tmp_path: Path, out: str) -> None:
    check_output_root(tmp_path / out, "--out")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--out", "-o"])
def test_a_file_as_the_output_root_names_the_option_the_path_and_a_folder(tmp_path: Path, option: str) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("keep me\n")
    with pytest.raises(OutputError) as caught:
        check_output_root(blocker, option)
    assert str(caught.value) == f"{option} {blocker}: {blocker} is a file; expected a folder"
    assert blocker.read_text() == "keep me\n"


def test_a_path_under_a_regular_file_names_the_file_in_the_way(tmp_path: Path) -> None:
    """A parent that is a file cannot hold the folder; this works as root too, unlike a permission test."""
    blocker = tmp_path / "afile"
    blocker.write_text("keep me\n")
    out = blocker / "sub" / "out"
    with pytest.raises(OutputError) as caught:
        check_output_root(out, "--out")
    assert str(caught.value) == f"--out {out}: {blocker} is a file; expected a folder"
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a folder whatever its mode")
def test_an_unwritable_parent_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputError) as caught:
            check_output_root(parent / "out", "-o")
    finally:
        parent.chmod(stat.S_IRWXU)
    expected = f"-o {parent / 'out'}: cannot write into {parent} (permission denied); expected a writable folder"
    assert str(caught.value) == expected


def test_an_unwritable_parent_is_refused_also_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.access says what the kernel would allow; here it is made to deny the parent, whoever runs the test."""
    parent = tmp_path / "locked"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != parent and real_access(path, mode))
    with pytest.raises(OutputError) as caught:
        check_output_root(parent / "a" / "b", "--out")
    assert str(caught.value) == (
        f"--out {parent / 'a' / 'b'}: cannot write into {parent} (permission denied); expected a writable folder"
    )
    assert sorted(parent.iterdir()) == []


def test_commit_installs_every_file_and_discard_leaves_no_staging(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a\n")
    (tmp_path / "stale.txt").write_text("stale\n")
    staging = StagedFiles()
    try:
        _stage(staging, tmp_path / "a.txt", "new a\n")
        _stage(staging, tmp_path / "sub" / "b.txt", "new b\n")
        staging.commit(remove=[tmp_path / "stale.txt"])
    finally:
        staging.discard()
    assert _snapshot(tmp_path) == {"a.txt": b"new a\n", "sub/b.txt": b"new b\n"}


def test_a_failed_rename_puts_every_previous_file_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"old {name}\n")
    before = _snapshot(tmp_path)
    real_replace = os.replace

    def fail_installing_b(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == tmp_path / "b.txt" and Path(src).parent.name.startswith(STAGING_PREFIX):
            raise OSError(errno.EIO, "Input/output error", str(src), None, str(dst))
        real_replace(src, dst)

    staging = StagedFiles()
    monkeypatch.setattr(os, "replace", fail_installing_b)
    try:
        for name in ("a.txt", "b.txt", "c.txt"):
            _stage(staging, tmp_path / name, f"new {name}\n")
        with pytest.raises(OutputError) as caught:
            staging.commit()
    finally:
        staging.discard()
    expected = f"{tmp_path / 'b.txt'}: cannot replace it (Input/output error); the previous files are unchanged"
    assert str(caught.value) == expected
    assert _snapshot(tmp_path) == before
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_a_directory_where_a_file_goes_is_refused_before_anything_changes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a\n")
    (tmp_path / "b.txt").mkdir()
    staging = StagedFiles()
    try:
        _stage(staging, tmp_path / "a.txt", "new a\n")
        _stage(staging, tmp_path / "b.txt", "new b\n")
        with pytest.raises(OutputError) as caught:
            staging.commit()
    finally:
        staging.discard()
    assert (
        str(caught.value)
        == f"{tmp_path / 'b.txt'}: is a directory; expected a file there (or nothing), remove it first"
    )
    assert (tmp_path / "a.txt").read_text() == "old a\n" and (tmp_path / "b.txt").is_dir()
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_a_previous_file_that_cannot_be_restored_is_kept_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the rollback fails, the staging folder (holding the previous files) is kept and named."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"old {name}\n")
    real_replace = os.replace

    def fail_installing_b_and_restoring_a(src: str | Path, dst: str | Path) -> None:
        installing_b = Path(dst) == tmp_path / "b.txt" and Path(src).parent.name.startswith(STAGING_PREFIX)
        restoring_a = Path(dst) == tmp_path / "a.txt" and Path(src).parent.name == "replaced"
        if installing_b or restoring_a:
            raise OSError(errno.EIO, "Input/output error", str(src), None, str(dst))
        real_replace(src, dst)

    staging = StagedFiles()
    monkeypatch.setattr(os, "replace", fail_installing_b_and_restoring_a)
    try:
        _stage(staging, tmp_path / "a.txt", "new a\n")
        _stage(staging, tmp_path / "b.txt", "new b\n")
        with pytest.raises(OutputError) as caught:
            staging.commit()
    finally:
        staging.discard()
    kept = list(tmp_path.glob(f"{STAGING_PREFIX}*"))
    assert len(kept) == 1 and (kept[0] / "replaced" / "a.txt").read_text() == "old a.txt\n"
    assert "cannot restore the previous file (Input/output error)" in str(caught.value)
    assert str(caught.value).endswith(f"the previous files are in {kept[0]}")
    assert (tmp_path / "b.txt").read_text() == "old b.txt\n"
