"""``golfc data fineweb`` against a fake hub repository on disk, and its one-line failure when offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golfc.data.build import DatasetPaths
from golfc.data.check import check_dataset
from golfc.data.command import data_app
from golfc.data.errors import DataError, DownloadError, ShardError, TokenizerMismatchError
from golfc.data.fineweb import DEFAULT_REPO_ID, fetch_fineweb, remote_files
from golfc.data.tokenizer import train_tokenizer

from .conftest import SMALL_VOCAB

VARIANT = f"sp{SMALL_VOCAB}"


def _fake_repo(tiny_build: DatasetPaths, root: Path, prefix: str = "datasets") -> Path:
    """A directory laid out like the hub repository: PREFIX/datasets/fineweb10B_spN/..., PREFIX/tokenizers/..."""
    base = root / prefix if prefix else root
    shutil.copytree(tiny_build.data_path, base / "datasets" / tiny_build.data_path.name)
    (base / "tokenizers").mkdir(parents=True)
    shutil.copy(tiny_build.tokenizer_path, base / "tokenizers" / tiny_build.tokenizer_path.name)
    return root


def test_remote_file_names_follow_the_official_export() -> None:
    assert remote_files(1024, 2) == [
        "datasets/fineweb10B_sp1024/fineweb_val_000000.bin",
        "datasets/fineweb10B_sp1024/fineweb_train_000000.bin",
        "datasets/fineweb10B_sp1024/fineweb_train_000001.bin",
        "tokenizers/fineweb_1024_bpe.model",
    ]


def test_fetch_from_local_source(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    out = tmp_path / "data"
    args = ["fineweb", "--variant", VARIANT, "--train-shards", "2", "-o", str(out), "--source", str(repo)]
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 0, result.output
    data_path = out / "datasets" / f"fineweb10B_{VARIANT}"
    assert sorted(p.name for p in data_path.iterdir()) == [
        "fineweb_train_000000.bin",
        "fineweb_train_000001.bin",
        "fineweb_val_000000.bin",
    ]
    assert f"DATA_PATH={data_path}" in result.stdout.splitlines()
    assert f"VOCAB_SIZE={SMALL_VOCAB}" in result.stdout.splitlines()
    tokenizer = out / "tokenizers" / tiny_build.tokenizer_path.name
    assert tokenizer.read_bytes() == tiny_build.tokenizer_path.read_bytes()
    assert check_dataset(data_path, tokenizer, SMALL_VOCAB).split("train").files == 2


def test_fetch_through_hf_hub_download(
    tiny_build: DatasetPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    calls: list[tuple[str, str, str | None, str]] = []

    def fake_download(repo_id: str, filename: str, *, subfolder: str | None, repo_type: str, **_: object) -> str:
        calls.append((repo_id, filename, subfolder, repo_type))
        return str(repo / (subfolder or "") / filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    fetched = fetch_fineweb(tmp_path / "data", variant=VARIANT, train_shards=1)
    assert all(call[0] == DEFAULT_REPO_ID and call[3] == "dataset" for call in calls)
    assert [(call[2], call[1]) for call in calls] == [
        (f"datasets/datasets/fineweb10B_{VARIANT}", "fineweb_val_000000.bin"),
        (f"datasets/datasets/fineweb10B_{VARIANT}", "fineweb_train_000000.bin"),
        ("datasets/tokenizers", f"fineweb_{SMALL_VOCAB}_bpe.model"),
    ]
    assert all(path.is_file() for path in fetched.files)
    calls.clear()
    fetch_fineweb(tmp_path / "data", variant=VARIANT, train_shards=1)
    assert calls == [], "files already present and valid are not fetched again"


def test_flat_repository_without_prefix(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo", prefix="")
    fetched = fetch_fineweb(tmp_path / "data", variant=VARIANT, train_shards=1, remote_prefix="", source=repo)
    assert fetched.tokenizer_path.is_file()


def test_missing_file_in_source_is_one_line_error(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    out = tmp_path / "data"
    args = ["fineweb", "--variant", VARIANT, "--train-shards", "50", "-o", str(out), "--source", str(repo)]
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0
    assert f"fineweb_train_{len(tiny_build.train.shards):06d}.bin" in result.stderr


def test_corrupt_shard_in_source_is_refused(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    victim = repo / "datasets" / "datasets" / f"fineweb10B_{VARIANT}" / "fineweb_train_000000.bin"
    victim.write_bytes(victim.read_bytes()[:-2])
    with pytest.raises(ShardError, match=str(victim)):
        fetch_fineweb(tmp_path / "data", variant=VARIANT, train_shards=1, source=repo)
    assert not (tmp_path / "data" / "datasets" / f"fineweb10B_{VARIANT}" / "fineweb_train_000000.bin").exists()


def test_bad_variant_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected sp<VOCAB>"):
        fetch_fineweb(tmp_path, variant="byte260", train_shards=1)
    with pytest.raises(DataError, match="source directory not found"):
        fetch_fineweb(tmp_path, train_shards=1, source=tmp_path / "absent")


def test_hub_failure_becomes_download_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*_: object, **__: object) -> str:
        raise ConnectionError("Name or service not known\nmore detail")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(DownloadError) as caught:
        fetch_fineweb(tmp_path, train_shards=1, repo_id="someone/export")
    message = str(caught.value)
    assert "\n" not in message and "someone/export" in message and "fineweb_val_000000.bin" in message


def test_offline_fails_with_one_line_and_nonzero_exit(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    code = (
        "import sys; from golfc.data.command import data_app; "
        f"data_app(['fineweb', '--train-shards', '1', '-o', {str(tmp_path / 'data')!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert DEFAULT_REPO_ID in lines[0] and "fineweb_val_000000.bin" in lines[0] and "cannot be reached" in lines[0]
    assert not (tmp_path / "data" / "datasets" / "fineweb10B_sp1024" / "fineweb_val_000000.bin").exists()


def _one_line_cli_error(args: list[str]) -> str:
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr


def test_output_that_is_a_file_is_one_line_error(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me\n")
    args = ["fineweb", "--variant", VARIANT, "--train-shards", "1", "-o", str(blocker), "--source", str(repo)]
    assert f"-o {blocker}: {blocker} is a file; expected a folder" in _one_line_cli_error(args)
    assert blocker.read_text() == "keep me\n"


def test_unwritable_destination_is_one_line_error_without_partial_files(
    tiny_build: DatasetPaths, tmp_path: Path
) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    out = tmp_path / "data"
    blocked = out / "datasets" / f"fineweb10B_{VARIANT}" / "fineweb_val_000000.bin"
    blocked.mkdir(parents=True)
    args = ["fineweb", "--variant", VARIANT, "--train-shards", "1", "-o", str(out), "--source", str(repo)]
    assert f"{blocked}: cannot write" in _one_line_cli_error(args)
    assert blocked.is_dir() and not list(out.rglob("*.partial"))


def test_tokenizer_with_the_wrong_vocab_is_refused(tiny_build: DatasetPaths, tmp_path: Path) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    base = repo / "datasets"  # present the sp512 export as sp1024: the shards are fine, the tokenizer has 512 pieces
    (base / "datasets" / tiny_build.data_path.name).rename(base / "datasets" / "fineweb10B_sp1024")
    wrong = base / "tokenizers" / "fineweb_1024_bpe.model"
    (base / "tokenizers" / tiny_build.tokenizer_path.name).rename(wrong)
    out = tmp_path / "data"
    with pytest.raises(TokenizerMismatchError) as caught:
        fetch_fineweb(out, variant="sp1024", train_shards=1, source=repo)
    assert str(caught.value) == f"{wrong}: tokenizer has vocab size {SMALL_VOCAB}, expected 1024"
    assert not (out / "tokenizers" / "fineweb_1024_bpe.model").exists()


@pytest.mark.parametrize("present", ["garbage", "other vocab"])
def test_bad_tokenizer_already_present_is_fetched_again(tiny_build: DatasetPaths, tmp_path: Path, present: str) -> None:
    repo = _fake_repo(tiny_build, tmp_path / "repo")
    out = tmp_path / "data"
    model = out / "tokenizers" / tiny_build.tokenizer_path.name
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not a model" if present == "garbage" else train_tokenizer(["ab ab abba baab"] * 20, 263))
    fetched = fetch_fineweb(out, variant=VARIANT, train_shards=1, source=repo)
    assert fetched.tokenizer_path == model
    assert model.read_bytes() == tiny_build.tokenizer_path.read_bytes()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"val_shards": 0}, "--val-shards 0: expected 1 or more"),
        ({"val_shards": -2}, "--val-shards -2: expected 1 or more"),
        ({"variant": "sp0"}, "variant 'sp0': expected sp<VOCAB>"),
        ({"variant": "sp01024"}, "variant 'sp01024': expected sp<VOCAB>"),
        ({"variant": "byte260"}, "variant 'byte260': expected sp<VOCAB>"),
    ],
)
def test_bad_val_shards_and_variants_are_refused(tmp_path: Path, options: dict[str, object], expected: str) -> None:
    with pytest.raises(DataError) as caught:
        fetch_fineweb(tmp_path / "data", train_shards=1, source=tmp_path / "absent", **options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(expected)
    assert not (tmp_path / "data").exists()


def _official_layout(tiny_build: DatasetPaths, root: Path) -> Path:
    """willdepueoai/parameter-golf as its data/README.md describes it: the export rooted under ``datasets/``, with
    ``manifest.json`` beside ``datasets/`` and ``tokenizers/`` (cached_challenge_fineweb.py reads it)."""
    repo = _fake_repo(tiny_build, root)
    (repo / "datasets" / "manifest.json").write_text('{"datasets": [], "tokenizers": []}\n')
    return repo


@pytest.mark.parametrize(
    ("variant", "expected_repo"), [("sp1024", "willdepueoai/parameter-golf"), ("sp8192", "kevclark/parameter-golf")]
)
def test_default_repository_is_the_one_the_challenge_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str, expected_repo: str
) -> None:
    import huggingface_hub

    asked: list[str] = []

    def refuse(repo_id: str, filename: str, **_: object) -> str:
        asked.append(repo_id)
        raise OSError("offline")

    monkeypatch.delenv("MATCHED_FINEWEB_REPO_ID", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    with pytest.raises(DownloadError, match=f"from dataset {expected_repo}:"):
        fetch_fineweb(tmp_path / "data", variant=variant, train_shards=1)
    assert set(asked) == {expected_repo}
    monkeypatch.setenv("MATCHED_FINEWEB_REPO_ID", "someone/mirror")  # the official script's variable still wins
    asked.clear()
    with pytest.raises(DownloadError):
        fetch_fineweb(tmp_path / "data", variant=variant, train_shards=1)
    assert set(asked) == {"someone/mirror"}


@pytest.mark.parametrize("layout_name", ["willdepueoai", "kevclark"])
def test_fetch_from_a_directory_laid_out_like_each_repository(
    tiny_build: DatasetPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout_name: str
) -> None:
    """Both hub repositories keep the export under ``datasets/`` (kevclark's is fetched by the same script with
    only MATCHED_FINEWEB_REPO_ID changed); --repo picks the repository, here served from disk by the hub client."""
    import huggingface_hub

    repo = _official_layout(tiny_build, tmp_path / layout_name) if layout_name == "willdepueoai" else _fake_repo(
        tiny_build, tmp_path / layout_name
    )
    repo_id = f"{layout_name}/parameter-golf"

    def serve(asked_repo: str, filename: str, *, subfolder: str | None, repo_type: str, **_: object) -> str:
        assert asked_repo == repo_id and repo_type == "dataset"
        return str(repo / (subfolder or "") / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", serve)
    out = tmp_path / "data"
    args = ["fineweb", "--variant", VARIANT, "--train-shards", "1", "-o", str(out), "--repo", repo_id]
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 0, result.output
    assert (out / "datasets" / f"fineweb10B_{VARIANT}" / "fineweb_train_000000.bin").is_file()
    assert (out / "tokenizers" / f"fineweb_{SMALL_VOCAB}_bpe.model").is_file()
