"""Shared fixtures for golfc's own tests and the plugins' tests (tests/ and plugins/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One intra-op thread for torch in the test process and in every program a test starts (they inherit the
# environment), unless the caller chose otherwise. The tests' models are tiny: a second thread buys nothing,
# and on a shared 2-core machine the threads of a run (and of 8 CPU ranks) wait on each other. A 3-step
# tiny run took 15.5 s with two threads against 7.4 s with one while another process held a core, and two
# threads gave a different train_loss from run to run (5.2331, 5.2814); one thread gives the same every time.
os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by torch when it is first imported, after this file

import pytest

from golfc.testing import PluginDir


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: pytest without it (-p no:xdist) still runs
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pytest-xdist, the README's test command): one worker per core this process may run on (its CPU
    affinity, capped by a cgroup v2 CPU quota), not per core of the host; PYTEST_XDIST_AUTO_NUM_WORKERS overrides.
    Each worker runs its tests one at a time with one torch thread (above), so workers never outnumber the cores."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").isdigit():
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


@pytest.fixture
def plugin_dir(tmp_path: Path):
    """A fresh --plugins-dir; loose plugins and their run-time modules are forgotten afterwards."""
    root = tmp_path / "golfc_plugins_dir"
    root.mkdir()
    before = set(sys.modules)
    yield PluginDir(root)
    for name in set(sys.modules) - before:
        if name.startswith("golfc_local_plugins") or name.endswith("_runtime"):
            del sys.modules[name]
    if str(root) in sys.path:
        sys.path.remove(str(root))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Challenge-format shards and a 384-piece tokenizer built from golfc's shipped tiny corpus, each validation
    document cut to its first golfc.testing.TINY_VAL_DOC_TOKENS tokens (the train shards and the tokenizer as built)."""
    import golfc.data
    from golfc.data.build import build_dataset
    from golfc.testing import cut_validation

    corpus = Path(golfc.data.__file__).parent / "corpus" / "tiny-docs.jsonl.xz"
    return cut_validation(build_dataset(corpus, 384, tmp_path_factory.mktemp("tiny_data")))


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset):
    """(environment, trained state dict) of a tiny baseline GPT trained 60 steps on the tiny dataset: trained
    weights for the artifact tests (quantizers, compressors, budget)."""
    from golfc.testing import TINY_QUANT_ENV, load_program, train_tiny

    env = {**TINY_QUANT_ENV, **tiny_dataset.env()}
    model = train_tiny(load_program(env=env), tiny_dataset)
    return env, {k: v.detach().clone() for k, v in model.state_dict().items()}
