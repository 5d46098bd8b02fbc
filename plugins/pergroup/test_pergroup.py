"""plugins/pergroup: the exact inverse pair on any bytes and on torch.save blobs (random and trained tiny weights),
the layout (roles, groups, greedy row order, transpose, shuffle), the versioned format, missing packages, and an
emitted run that exports and scores a pergroup artifact."""

from __future__ import annotations

import io
import json
import os
import struct

import brotli
import numpy as np
import pytest
import torch

from golfc.testing import load_program, run_without_package


def saved(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def assert_same(a, b):
    """Identical objects: names, nesting, shapes, dtypes and every value."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def random_quant_obj(seed=0):
    g = torch.Generator().manual_seed(seed)
    q = {f"stack.blocks.{i}.{r}.weight": torch.randint(-31, 32, (48 + 16 * (r == "mlp.fc"), 40), generator=g,
                                                       dtype=torch.int8)
         for i in range(3) for r in ("attn.c_q", "mlp.fc", "mlp.proj")}
    base = torch.randn(6, 10, generator=g)
    return {"__quant_format__": "golfc_lowbit_v1", "q": q,
            "scale": {k: torch.rand(v.shape[0], generator=g).half() for k, v in q.items()},
            "keep": {"stack.blocks.0.attn_scale": torch.randn(40, generator=g),  # fp32 control tensor
                     "bf16": torch.randn(7, generator=g).bfloat16(), "steps": torch.tensor([3, 4], dtype=torch.int64),
                     "view": base[1:4, 2:7], "shared_a": base, "shared_b": base.view(-1)[5:20],  # views, shared
                     "flags": torch.tensor([True, False, True]), "empty": torch.zeros(0, 4)},
            "shapes": {k: tuple(v.shape) for k, v in q.items()},
            "lowrank": {"x": {"a": torch.ones(3, 2, dtype=torch.int8)}},
            "nested": [torch.arange(5, dtype=torch.int16), (torch.ones(2, 3, dtype=torch.int8), "text", 7)]}


@pytest.mark.parametrize("env", [{}, {"PERGROUP_REORDER": "none", "PERGROUP_BACKEND": "zstd"},
                                 {"PERGROUP_TRANSPOSE": "0", "PERGROUP_SHUFFLE": "0", "PERGROUP_BACKEND": "zstd"},
                                 {"PERGROUP_STREAM_BYTES": "0", "PERGROUP_BACKEND": "lzma"},
                                 {"PERGROUP_REORDER_PATTERNS": ".", "PERGROUP_STREAM_BYTES": "1",
                                  "PERGROUP_BACKEND": "zstd"}])
def test_exact_round_trip_of_any_bytes_and_of_torch_save_blobs(env):
    ns = load_program(("pergroup",), env=env)
    assert ns["COMPRESS_LABEL"] == "pergroup"
    for raw in (b"", b"x", os.urandom(3_000), b"PK\x03\x04" + os.urandom(200),
                bytes(range(256)) * 64 + b"golfc" * 1000):
        assert ns["decompress_bytes"](ns["compress_bytes"](raw)) == raw
    for seed in (0, 1):
        obj = random_quant_obj(seed)
        raw = saved(obj)
        blob = ns["compress_bytes"](raw)
        assert blob[:5] == b"PGRP\x01" and ns["decompress_bytes"](blob) == raw
        assert_same(obj, torch.load(io.BytesIO(ns["decompress_bytes"](blob))))


def test_segments_name_roles_across_layers_and_find_every_storage():
    ns = load_program(("pergroup",))
    obj = random_quant_obj()
    raw = saved(obj)
    segs = ns["pergroup_segments"](raw)
    roles = {s["role"] for s in segs}
    assert {"q/stack.blocks.*.attn.c_q.weight", "q/stack.blocks.*.mlp.fc.weight", "keep/stack.blocks.*.attn_scale",
            "scale/stack.blocks.*.mlp.proj.weight", "nested/0"} <= roles
    by_role = {}
    for s in segs:
        by_role.setdefault(s["role"], []).append(s)
        assert s["start"] + s["length"] <= len(raw)
    assert [(s["rows"], s["cols"], s["esize"]) for s in by_role["q/stack.blocks.*.mlp.fc.weight"]] == [(64, 40, 1)] * 3
    assert {(s["rows"], s["esize"]) for s in by_role["scale/stack.blocks.*.mlp.fc.weight"]} == {(0, 2)}
    assert by_role["keep/stack.blocks.*.attn_scale"][0]["esize"] == 4
    # every storage's bytes are its tensor's bytes: the int8 matrix of layer 1's fc
    s = by_role["q/stack.blocks.*.mlp.fc.weight"][1]
    assert raw[s["start"]:s["start"] + s["length"]] == obj["q"]["stack.blocks.1.mlp.fc.weight"].numpy().tobytes()
    shared = [s for s in segs if s["role"] in ("keep/view", "keep/shared_a", "keep/shared_b")]
    assert len(shared) == 1 and shared[0]["rows"] == 0  # one storage behind three views: stored once, not a matrix


def test_greedy_order_takes_the_nearest_unused_row_and_inverts():
    ns = load_program(("pergroup",))
    q = np.array([[0, 0], [10, 10], [1, 1], [11, 12], [2, 0]], dtype=np.int8)
    assert ns["pergroup_greedy_order"](q).tolist() == [0, 2, 4, 1, 3]  # ties go to the lowest index
    h = ns["Hyperparameters"]
    seg = {"rows": 5, "cols": 2, "role": "q/stack.blocks.*.mlp.proj.weight", "transposed": 1}
    assert ns["pergroup_reorders"](seg, h)
    data, perm = ns["pergroup_forward"](q.tobytes(), seg, h, True)
    assert data == np.ascontiguousarray(q[perm].T).tobytes()
    assert ns["pergroup_backward"](data, seg, perm) == q.tobytes()
    seg["role"] = "q/stack.blocks.*.attn.c_q.weight"  # not in PERGROUP_REORDER_PATTERNS: transposed only
    assert not ns["pergroup_reorders"](seg, h)
    data, perm = ns["pergroup_forward"](q.tobytes(), seg, h, False)
    assert perm is None and data == np.ascontiguousarray(q.T).tobytes()


def stored_meta(ns, blob):
    head = ns["pergroup_unpack_streams"](blob)[0]
    return json.loads(head[4:4 + struct.unpack_from("<I", head)[0]])


def test_auto_reorders_a_role_only_where_the_permutation_pays():
    """Clustered rows in shuffled order (reordering pays) keep their permutation; uniform random rows drop it."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randint(-31, 32, (8, 256), generator=g)
    clustered = (centres.repeat(16, 1) + torch.randint(-1, 2, (128, 256), generator=g)).clamp(-31, 31)
    obj = {"q": {"stack.blocks.0.mlp.proj.weight": clustered[torch.randperm(128, generator=g)].to(torch.int8),
                 "stack.blocks.0.attn.c_q.weight": torch.randint(-31, 32, (128, 256), generator=g, dtype=torch.int8)}}
    raw = saved(obj)
    ns = load_program(("pergroup",), env={"PERGROUP_REORDER": "auto", "PERGROUP_REORDER_PATTERNS": "weight",
                                          "PERGROUP_BACKEND": "zstd"})
    blob = ns["compress_bytes"](raw)
    assert ns["decompress_bytes"](blob) == raw
    roles = [s["role"] for s in ns["pergroup_segments"](raw)]
    flags = {role: seg[-1] for role, seg in zip(roles, stored_meta(ns, blob)["segs"], strict=True)}
    assert flags == {"q/stack.blocks.*.mlp.proj.weight": 1, "q/stack.blocks.*.attn.c_q.weight": 0}
    greedy = load_program(("pergroup",), env={"PERGROUP_REORDER_PATTERNS": "weight", "PERGROUP_BACKEND": "zstd"})
    assert [seg[-1] for seg in stored_meta(ns, greedy["compress_bytes"](raw))["segs"]] == [1, 1]  # greedy keeps both
    assert len(blob) < len(greedy["compress_bytes"](raw))


def test_shuffle_groups_bytes_by_position_in_the_element():
    ns = load_program(("pergroup",))
    assert ns["pergroup_shuffle"](b"aAbBcC", 2) == b"abcABC" and ns["pergroup_unshuffle"](b"abcABC", 2) == b"aAbBcC"
    data = os.urandom(4 * 33)
    assert ns["pergroup_unshuffle"](ns["pergroup_shuffle"](data, 4), 4) == data


def test_the_format_is_versioned_and_bad_blobs_are_refused():
    ns = load_program(("pergroup",))
    blob = ns["compress_bytes"](saved(random_quant_obj()))
    with pytest.raises(ValueError, match=r"^pergroup format version 2: this program reads version 1$"):
        ns["decompress_bytes"](blob[:4] + b"\x02" + blob[5:])
    with pytest.raises(ValueError, match="no PGRP magic"):
        ns["decompress_bytes"](brotli.compress(b"abc"))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ns["decompress_bytes"](blob[:40])


def test_auto_keeps_the_smallest_backend_per_stream_and_works_without_the_optional_packages():
    ns = load_program(("pergroup",))
    raw = saved(random_quant_obj())
    assert len(ns["compress_bytes"](raw)) <= min(len(load_program(("pergroup",), env={"PERGROUP_BACKEND": b})
                                                     ["compress_bytes"](raw)) for b in ("lzma", "zstd", "brotli"))
    with_brotli = load_program(("pergroup",), env={"PERGROUP_BACKEND": "brotli"})["compress_bytes"](raw)
    ns["pergroup_module"] = lambda backend: None  # neither zstandard nor brotli installed
    assert ns["pergroup_available"]("auto") == ["lzma"]
    blob = ns["compress_bytes"](raw)
    codecs, pos = [], 6
    for _ in range(blob[5]):
        codecs.append(blob[pos])
        pos += 5 + struct.unpack_from("<I", blob, pos + 1)[0]
    assert set(codecs) <= {0, 1} and ns["decompress_bytes"](blob) == raw  # stored or lzma only
    with pytest.raises(RuntimeError, match=r"needs the Python package 'brotli' \(pip install brotli\)$"):
        ns["decompress_bytes"](with_brotli)


def test_trained_tiny_weights_round_trip_exactly_and_beat_plain_brotli(tiny_trained):
    """int6 on the tiny trained model: the blob reads back to the identical quantized object, is smaller than
    brotli-11 on the same bytes, and the greedy row order of mlp.proj pays for its stored permutation (README:
    by how much)."""
    env, state = tiny_trained
    ns = load_program(("int6", "pergroup"), env=env)
    obj, _ = ns["quantize_model"](None, state, ns["Hyperparameters"](), None, None)
    raw = saved(obj)
    blob = ns["compress_bytes"](raw)
    assert ns["decompress_bytes"](blob) == raw
    back = torch.load(io.BytesIO(ns["decompress_bytes"](blob)))
    assert_same(obj, back)
    assert len(blob) < len(brotli.compress(raw, quality=11))
    unordered = load_program(("pergroup",), env={"PERGROUP_REORDER": "none"})["compress_bytes"](raw)
    assert len(blob) < len(unordered)


def test_a_missing_package_is_one_line_naming_it(tmp_path):
    proc = run_without_package(("pergroup",), "brotli", tmp_path, {"PERGROUP_BACKEND": "brotli"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: the pergroup compressor with PERGROUP_BACKEND=brotli needs the Python "
                                   "package 'brotli' (pip install brotli)")


def test_an_emitted_program_exports_and_scores_a_pergroup_artifact(tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    run = run_emitted(("int6", "pergroup"), tiny_dataset, tmp_path, env={"QUANT_KEEP_FLOAT_NUMEL": "1024"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Serialized model int6+pergroup:" in run.stdout and run.final_bpb is not None
    assert "final_int6_pergroup_roundtrip_exact" in run.stdout
