"""plugins/token_stream_loader: contiguous chunks, one span per rank, wrap-around over sorted shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golfc.data.shards import write_shard
from golfc.testing import load_program


class H:
    def __init__(self, pattern, vocab_size=65536):
        self.train_files, self.vocab_size = pattern, vocab_size


def test_spans_per_rank_and_wraparound(tmp_path):
    ns = load_program(overrides={"DEVICE": "cpu"})
    write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(1000, 1050))  # sorted second
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(0, 70))
    stream = list(range(70)) + list(range(1000, 1050))  # 120 tokens, then it starts over
    world, accum, seq, global_tokens = 2, 4, 4, 64  # local_tokens = 64 // 8 = 8 -> spans of 9
    loaders = []
    for rank in range(world):
        ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, False, accum)
        loaders.append(ns["TokenStreamLoader"](H(str(tmp_path / "fineweb_train_*.bin")), ctx))
    pos = 0
    for _ in range(20):  # 20 calls of 18 tokens: 3 passes over the stream
        for rank, loader in enumerate(loaders):
            x, y = loader.next_batch(global_tokens, seq, accum)
            assert x.shape == y.shape == (2, seq) and x.dtype == y.dtype == torch.int64
            span = [stream[(pos + rank * 9 + i) % len(stream)] for i in range(9)]
            assert x.flatten().tolist() == span[:-1] and y.flatten().tolist() == span[1:]
        pos += world * 9


def loader(ns, pattern, vocab_size=65536):
    ctx = ns["RunContext"](0, 1, 0, torch.device("cpu"), True, False, 8)
    return ns["TokenStreamLoader"](H(pattern, vocab_size), ctx)


def test_empty_shards_are_skipped_and_all_empty_is_an_error_not_a_hang(tmp_path):
    ns = load_program(overrides={"DEVICE": "cpu"})
    write_shard(tmp_path / "fineweb_train_000000.bin", [])
    write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(1, 6))
    write_shard(tmp_path / "fineweb_train_000002.bin", [])
    stream = loader(ns, str(tmp_path / "fineweb_train_*.bin"))
    assert stream._take(12).tolist() == [1, 2, 3, 4, 5] * 2 + [1, 2]  # the empty ones pass by
    for path in tmp_path.glob("*.bin"):
        write_shard(path, [])
    with pytest.raises(ValueError, match="every train shard is empty"):
        loader(ns, str(tmp_path / "fineweb_train_*.bin"))._take(1)


def test_an_id_outside_the_vocabulary_fails_when_its_shard_loads(tmp_path):
    ns = load_program(overrides={"DEVICE": "cpu"})
    write_shard(tmp_path / "fineweb_train_000000.bin", np.arange(0, 8))
    write_shard(tmp_path / "fineweb_train_000001.bin", [1, 2, 700])
    stream = loader(ns, str(tmp_path / "fineweb_train_*.bin"), vocab_size=512)
    assert stream._take(8).tolist() == list(range(8))
    with pytest.raises(ValueError, match=r"fineweb_train_000001\.bin: token id 700, expected ids below VOCAB_SIZE=512"):
        stream._take(1)
