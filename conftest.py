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


# Tokens the tests' dataset keeps of each validation document (BOS included): the corpus's 34 validation documents
# hold 183,168 tokens, cut they hold 16,320 (4 forward passes of a tiny run's evaluation), and every document stays
# (the verifier's documents check builds its probe stream from pieces of many documents). An emitted tiny run
# evaluates twice (last step, roundtrip); over the whole split those two evaluations were about 85% of its time.
TINY_VAL_DOC_TOKENS = 480


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Challenge-format shards and a 384-piece tokenizer built from golfc's shipped tiny corpus, each validation
    document cut to its first TINY_VAL_DOC_TOKENS tokens (the train shards and the tokenizer as built)."""
    import dataclasses
    import itertools

    import numpy as np

    import golfc.data
    from golfc.data.build import SplitStats, build_dataset
    from golfc.data.shards import read_shard, write_shard

    corpus = Path(golfc.data.__file__).parent / "corpus" / "tiny-docs.jsonl.xz"
    built = build_dataset(corpus, 384, tmp_path_factory.mktemp("tiny_data"))
    first, *rest = built.val.shards
    tokens = np.concatenate([read_shard(shard) for shard in built.val.shards])
    starts = [*np.nonzero(tokens == 1)[0].tolist(), tokens.size]  # each document is [BOS=1] + its tokens
    tokens = np.concatenate([tokens[a : min(b, a + TINY_VAL_DOC_TOKENS)] for a, b in itertools.pairwise(starts)])
    write_shard(first, tokens)
    for shard in rest:
        shard.unlink()
    val = SplitStats(docs=built.val.docs, tokens=int(tokens.size), text_bytes=-1, shards=(first,))  # -1: not counted
    return dataclasses.replace(built, val=val)


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset):
    """(environment, trained state dict) of a tiny baseline GPT trained 60 steps on the tiny dataset: trained
    weights for the artifact tests (quantizers, compressors, budget)."""
    from golfc.testing import TINY_QUANT_ENV, load_program, train_tiny

    env = {**TINY_QUANT_ENV, **tiny_dataset.env()}
    model = train_tiny(load_program(env=env), tiny_dataset)
    return env, {k: v.detach().clone() for k, v in model.state_dict().items()}
