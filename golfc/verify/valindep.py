"""Val-independence (L3, L21) of a golfc build: the artifact must not depend on the validation data.

Two tiny CPU runs of the shipped program, identical but for the validation shard's contents (the same tokens,
shuffled), must write byte-identical artifacts. A program that trains on validation tokens before export
(pre-quantization TTT, L3) or packs them into its weights (a paid prefix, L21) writes different bytes. Only for
golfc builds: golfc knows their training is deterministic on one CPU thread, so a difference means a leak; when
two runs on the *same* data already differ, the verdict is WARN (cannot decide), never FAIL.

The runs use a small copy of the data (the first tokens of the train and validation shards), so the check costs
a few seconds wherever the real data lives.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from golfc.data.shards import find_shards, read_shard, shard_name, write_shard
from golfc.testing import TINY_RUN_ENV
from golfc.verify.findings import CheckResult

TRAIN_TOKENS = 65_536
VAL_TOKENS = 4_097
STEPS = "3"
RULE = "L3"


def small_copy(data_path: Path, out: Path, *, train_tokens: int = TRAIN_TOKENS, val_tokens: int = VAL_TOKENS,
               shuffle_val_seed: int | None = None) -> Path:
    """A dataset folder with the first ``train_tokens`` train and ``val_tokens`` validation tokens of
    ``data_path`` (one shard each), the validation tokens shuffled when ``shuffle_val_seed`` is given."""
    out.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train_tokens), ("val", val_tokens)):
        shards = find_shards(data_path, split)
        if not shards:
            raise FileNotFoundError(f"{data_path}: no fineweb_{split}_*.bin shards")
        parts, have = [], 0
        for shard in shards:
            tokens = read_shard(shard)[: count - have]
            parts.append(tokens)
            have += tokens.size
            if have >= count:
                break
        tokens = np.concatenate(parts)
        if split == "val" and shuffle_val_seed is not None:
            tokens = np.random.default_rng(shuffle_val_seed).permutation(tokens)
        write_shard(out / shard_name(split, 0), tokens)
    return out


def _artifacts(workdir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(workdir.glob("final_model*"))
            if p.is_file()}


def _tiny_run(program: Path, data: Path, workdir: Path, env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    workdir.mkdir(parents=True, exist_ok=True)
    run_env = {**os.environ, **dict(env), **TINY_RUN_ENV, "ITERATIONS": STEPS, "SEED": "1337",
               "DATA_PATH": str(data), "RUN_ID": "val_independence", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(program)], cwd=workdir, env=run_env, capture_output=True, text=True,
                          timeout=900, check=False)
    (workdir / "console.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"tiny CPU run exited {proc.returncode}: {tail}")
    return _artifacts(workdir), proc.stdout


def val_independence(program: Path, env: Mapping[str, str], workdir: Path, *, golfc_build: bool) -> CheckResult:
    """Run the program twice on CPU with different validation contents; compare the artifacts' bytes."""
    name = "val_independence"
    if not golfc_build:
        return CheckResult(name, RULE, "SKIP", "not a golfc build (no golfc.lock): its training need not be "
                           "deterministic, so differing artifacts would prove nothing")
    data_path, tokenizer = env.get("DATA_PATH"), env.get("TOKENIZER_PATH")
    if not data_path or not tokenizer:
        return CheckResult(name, RULE, "SKIP", "DATA_PATH and TOKENIZER_PATH are needed (give --env or export them)")
    try:
        base = small_copy(Path(data_path), workdir / "data_a")
        other = small_copy(Path(data_path), workdir / "data_b", shuffle_val_seed=1)
        with ThreadPoolExecutor(2) as pool:  # two single-threaded processes: side by side on two cores
            runs = [pool.submit(_tiny_run, program, data, workdir / run, env)
                    for data, run in ((base, "run_a"), (other, "run_b"))]
            (first, _), (second, _) = (run.result() for run in runs)
        details: dict[str, object] = {"artifacts_a": first, "artifacts_b": second, "steps": int(STEPS)}
        if not first:
            return CheckResult(name, RULE, "SKIP", "the tiny run wrote no final_model* artifact", details)
        if first == second:
            return CheckResult(name, RULE, "PASS", f"two tiny CPU runs with different validation contents wrote "
                               f"byte-identical artifacts ({', '.join(first)})", details)
        again, _ = _tiny_run(program, base, workdir / "run_a2", env)
        details["artifacts_a2"] = again
        differing = sorted(k for k in first if first.get(k) != second.get(k))
        if again != first:
            return CheckResult(name, RULE, "WARN", "the tiny CPU run is not deterministic (two runs on the same "
                               "data wrote different artifacts): val-independence cannot be decided", details)
        return CheckResult(name, RULE, "FAIL", f"the artifact depends on the validation data: {', '.join(differing)} "
                           "differ when only the validation tokens change (pre-quantization TTT, L3, or validation "
                           "data packed into the artifact, L21)", details)
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        return CheckResult(name, RULE, "SKIP", f"could not run: {exc}")
