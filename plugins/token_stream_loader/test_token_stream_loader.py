"""plugins/token_stream_loader: contiguous chunks, one span per rank, wrap-around over sorted shards."""

from __future__ import annotations

import numpy as np
import torch

from golfc.data.shards import write_shard
from golfc.testing import load_program


class H:
    def __init__(self, pattern):
        self.train_files = pattern


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
