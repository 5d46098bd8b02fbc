"""Example submissions under submissions/ stay identical to a fresh build of their recorded recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golfc.build import build_submission

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.parent for p in ROOT.joinpath("submissions").glob("*/golfc.lock"))


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_submission_matches_a_fresh_build(folder, tmp_path):
    lock = json.loads((folder / "golfc.lock").read_text())
    fresh = build_submission(
        tuple(lock["plugins"]), {k: str(v) for k, v in lock["overrides"].items()}, tmp_path, minify=lock["minify"]
    )
    plugins = ",".join(lock["plugins"])
    hint = f"rebuild it: golfc build {'--plugins ' + plugins + ' ' if plugins else ''}-o {folder.relative_to(ROOT)}"
    for name in ("train_gpt.py", "train_gpt.src.py", "golfc.lock"):
        assert (folder / name).read_text() == (fresh.out_dir / name).read_text(), f"{name} is stale; {hint}"


def test_there_is_at_least_one_example():
    assert EXAMPLES
