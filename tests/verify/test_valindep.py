"""Val-independence (L3, L21): two tiny runs that differ only in the validation contents must write identical
artifacts. Programs here are small stand-ins with a golfc.lock beside them (the check runs any program the way it
runs a golfc build); the real build's PASS is in test_verify_end_to_end.py."""

from __future__ import annotations

import textwrap

import numpy as np

from golfc.data.shards import read_shard
from golfc.verify.valindep import small_copy, val_independence

PROGRAMS = {
    # trains on the train shard only: the artifact is a function of the train tokens
    "clean": "src = os.path.join(os.environ['DATA_PATH'], 'fineweb_train_000000.bin')",
    # bakes the validation tokens into the artifact (a paid prefix, or pre-quantization TTT)
    "leaky": "src = os.path.join(os.environ['DATA_PATH'], 'fineweb_val_000000.bin')",
}
TEMPLATE = textwrap.dedent("""
    import hashlib, os
    {pick}
    digest = hashlib.sha256(open(src, 'rb').read()).digest()
    {extra}
    open('final_model.int8.ptz', 'wb').write(digest)
""")


def _program(tmp_path, kind, extra=""):
    folder = tmp_path / kind
    folder.mkdir()
    (folder / "golfc.lock").write_text("{}")
    (folder / "train_gpt.py").write_text(TEMPLATE.format(pick=PROGRAMS.get(kind, PROGRAMS["clean"]), extra=extra))
    return folder / "train_gpt.py"


def test_small_copy_shuffles_only_the_validation_tokens(tmp_path, small_data):
    from pathlib import Path

    a = small_copy(Path(small_data["DATA_PATH"]), tmp_path / "a", train_tokens=1000, val_tokens=300)
    b = small_copy(Path(small_data["DATA_PATH"]), tmp_path / "b", train_tokens=1000, val_tokens=300,
                   shuffle_val_seed=1)
    train_a, train_b = (read_shard(d / "fineweb_train_000000.bin") for d in (a, b))
    val_a, val_b = (read_shard(d / "fineweb_val_000000.bin") for d in (a, b))
    assert train_a.size == 1000 and np.array_equal(train_a, train_b)
    assert val_a.size == 300 and not np.array_equal(val_a, val_b) and np.array_equal(np.sort(val_a), np.sort(val_b))


def test_verdicts_for_clean_leaky_nondeterministic_and_foreign_programs(tmp_path, small_data):
    clean = val_independence(_program(tmp_path, "clean"), small_data, tmp_path / "w1", golfc_build=True)
    assert (clean.rule, clean.verdict) == ("L3", "PASS"), clean.evidence
    leaky = val_independence(_program(tmp_path, "leaky"), small_data, tmp_path / "w2", golfc_build=True)
    assert leaky.verdict == "FAIL" and "final_model.int8.ptz" in leaky.evidence
    noisy = _program(tmp_path, "noisy", extra="digest = os.urandom(8)")
    result = val_independence(noisy, small_data, tmp_path / "w3", golfc_build=True)
    assert result.verdict == "WARN" and "not deterministic" in result.evidence
    foreign = val_independence(_program(tmp_path, "foreign"), small_data, tmp_path / "w4", golfc_build=False)
    assert foreign.verdict == "SKIP"
    broken = _program(tmp_path, "broken", extra="raise SystemExit(4)")
    assert val_independence(broken, small_data, tmp_path / "w5", golfc_build=True).verdict == "SKIP"
