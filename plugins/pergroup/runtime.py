# ==================================================================================================
# plugins/pergroup: artifact compression by tensor role (tricks.md row 36; the 04-27 record's COMPRESSOR=pergroup,
# PR #1855, with lzma / zstd / brotli in place of its lrzip). Every tensor storage is cut out of the torch.save zip;
# the int8 matrices are grouped by role across layers (all c_q, all fc, ...), rows optionally put in greedy L1
# order (permutation stored) and transposed; the other tensors follow by role, byte-shuffled by element size; then
# the rest of the blob. Large groups are streams of their own, each compressed by PERGROUP_BACKEND (auto: the
# smallest installed). Decompression puts every byte back: the exact torch.save blob, whatever the quantizer wrote.
# Blob: b"PGRP" + version + stream count + per stream (codec id, u32 length, compressed bytes).
# ==================================================================================================
import importlib
import json
import lzma
import pickle
import re
import struct
import zipfile

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

PERGROUP_LABEL = "pergroup"
PERGROUP_MAGIC = b"PGRP"
PERGROUP_VERSION = 1  # written into every blob; another version is refused when read back
PERGROUP_PACKAGES = {"zstd": "zstandard", "brotli": "brotli"}  # optional backends -> their Python package
PERGROUP_CODECS = ("stored", "lzma", "zstd", "brotli")  # codec id = index; stored: the bytes as they are
PERGROUP_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]  # raw LZMA2: no xz container
PERGROUP_SEG_KEYS = ("start", "length", "group", "rows", "cols", "transposed", "perm")  # a segment in the metadata
PERGROUP_STORAGE_BYTES = {"Byte": 1, "Char": 1, "Bool": 1, "Short": 2, "Half": 2, "BFloat16": 2, "Int": 4,
                          "Float": 4, "Long": 8, "Double": 8}  # torch.<X>Storage -> element bytes


def pergroup_module(backend):
    """The Python module of an optional backend, or None when it is not installed."""
    try:
        return importlib.import_module(PERGROUP_PACKAGES[backend])
    except ImportError:
        return None


def pergroup_available(choice):
    """The backends PERGROUP_BACKEND allows that are installed (auto: every one of lzma, zstd, brotli found)."""
    wanted = ("lzma", "zstd", "brotli") if choice == "auto" else (choice,)
    return [b for b in wanted if b == "lzma" or pergroup_module(b) is not None]


if __name__ == "__main__" and not pergroup_available(Hyperparameters.pergroup_backend):
    pkg = PERGROUP_PACKAGES[Hyperparameters.pergroup_backend]  # one line before anything runs
    print(f"error: the pergroup compressor with PERGROUP_BACKEND={Hyperparameters.pergroup_backend} needs the Python "
          f"package '{pkg}' (pip install {pkg})", file=sys.stderr)
    sys.exit(2)


def pergroup_encode(codec, data):
    if codec == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=PERGROUP_LZMA_FILTERS)
    if codec == "zstd":
        return pergroup_module("zstd").ZstdCompressor(level=22).compress(data)
    if codec == "brotli":
        return pergroup_module("brotli").compress(data, quality=11, lgwin=24)
    return data


def pergroup_decode(codec, data):
    if codec == "lzma":
        return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=PERGROUP_LZMA_FILTERS)
    if codec in ("zstd", "brotli"):
        module = pergroup_module(codec)
        if module is None:
            pkg = PERGROUP_PACKAGES[codec]
            raise RuntimeError(f"this pergroup artifact needs the Python package '{pkg}' (pip install {pkg})")
        return module.ZstdDecompressor().decompress(data) if codec == "zstd" else module.decompress(data)
    return data


# ---- reading a torch.save blob: where each storage lies, and which tensor (path, shape) it holds -------------
class PergroupUnpickler(pickle.Unpickler):
    """Reads torch.save's data.pkl without building tensors: a tensor becomes a dict (storage key, element bytes,
    offset, shape, stride); every other global is the real one."""

    def persistent_load(self, pid):  # ('storage', storage type, key, location, numel)
        return {"key": str(pid[2]), "esize": PERGROUP_STORAGE_BYTES.get(str(pid[1]).removesuffix("Storage"), 1)}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, shape, stride, *rest: {**storage, "offset": offset, "shape": tuple(shape),
                                                                  "stride": tuple(stride)}
        if module == "torch" and name.endswith("Storage"):
            return name
        return super().find_class(module, name)


def pergroup_tensor_refs(obj, path=()):
    """[(path, ref)] of every tensor in the unpickled object (dicts, lists and tuples walked)."""
    if isinstance(obj, dict) and "key" in obj and "stride" in obj and "esize" in obj:
        return [(path, obj)]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    return [ref for k, v in items for ref in pergroup_tensor_refs(v, (*path, str(k)))]


def pergroup_segments(raw):
    """[{start, length, role, esize, rows, cols}] of the storages of a torch.save blob, in blob order: role is the
    tensor's path with layer numbers starred ("q/stack.blocks.*.attn.c_q.weight"); rows and cols are set for a
    2-D int8 tensor that fills its storage. Not a torch.save zip (or one this cannot read): no segments."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
        pkl = next(i for i in infos if i.filename.endswith("/data.pkl"))
        refs = pergroup_tensor_refs(PergroupUnpickler(io.BytesIO(zf.read(pkl))).load())
    except Exception:  # anything but a readable torch.save zip is stored as one opaque stream
        return []
    by_key = {}
    for path, ref in refs:
        by_key.setdefault(ref["key"], (path, ref))
    segs = []
    for info in infos:
        head, _, key = info.filename.rpartition("/data/")
        if not head or "/" in key or info.compress_type != zipfile.ZIP_STORED or info.file_size == 0:
            continue
        if raw[info.header_offset:info.header_offset + 4] != b"PK\x03\x04":
            return []
        name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
        seg = {"start": info.header_offset + 30 + name_len + extra_len, "length": info.file_size, "role": "?",
               "esize": 1, "rows": 0, "cols": 0}
        if key in by_key:
            path, ref = by_key[key]
            seg["role"] = "/".join(re.sub(r"\.\d+\.", ".*.", p) for p in path)
            seg["esize"] = ref["esize"] if info.file_size % ref["esize"] == 0 else 1
            shape, stride = ref["shape"], ref["stride"]
            if (ref["esize"] == 1 and len(shape) == 2 and ref["offset"] == 0 and stride == (shape[1], 1)
                    and shape[0] * shape[1] == info.file_size and shape[0] > 1):
                seg["rows"], seg["cols"] = shape
        segs.append(seg)
    segs.sort(key=lambda s: s["start"])
    ends = [s["start"] + s["length"] for s in segs]
    if any(e > s["start"] for e, s in zip(ends, segs[1:])) or (ends and ends[-1] > len(raw)):
        return []
    return segs


# ---- the transforms: row order, transpose, byte shuffle -------------------------------------------------------
def pergroup_greedy_order(q):
    """Row order of an int8 matrix (rows, cols): start at row 0, then always the unused row nearest in L1 to the
    last one taken (ties: the lowest index). Deterministic; O(rows^2 cols)."""
    x = q.astype(np.int16)
    n = x.shape[0]
    left = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    cur = 0
    for i in range(n):
        order[i], left[cur] = cur, False
        if i + 1 < n:
            idx = np.flatnonzero(left)
            cur = int(idx[np.argmin(np.abs(x[idx] - x[cur]).sum(axis=1))])
    return order


def pergroup_shuffle(data, stride):
    """Bytes regrouped by position modulo stride: data[0::s] + data[1::s] + ... (len(data) a multiple of s)."""
    return data if stride <= 1 else np.frombuffer(data, np.uint8).reshape(-1, stride).T.tobytes()


def pergroup_unshuffle(data, stride):
    return data if stride <= 1 else np.frombuffer(data, np.uint8).reshape(stride, -1).T.tobytes()


def pergroup_reorders(seg, h):
    """Whether this segment's rows may be reordered: an int8 matrix whose role matches PERGROUP_REORDER_PATTERNS."""
    patterns = [p for p in h.pergroup_reorder_patterns.split(",") if p]
    return h.pergroup_reorder != "none" and seg["rows"] > 1 and any(p in seg["role"] for p in patterns)


def pergroup_drop_unpaid(ordered, plain, segs, h):
    """PERGROUP_REORDER=auto: per group, the reordered forms are dropped unless they compress (the last backend
    allowed: brotli, zstd, lzma) smaller than the plain forms by more than their permutations (2 bytes a row)."""
    codec = pergroup_available(h.pergroup_backend)[-1]
    for g in sorted({segs[i]["group"] for i in ordered}):
        idx = [i for i in ordered if segs[i]["group"] == g]
        paid = len(pergroup_encode(codec, b"".join(ordered[i][0] for i in idx))) + sum(2 * segs[i]["rows"] for i in idx)
        if paid >= len(pergroup_encode(codec, b"".join(plain[i][0] for i in idx))):
            for i in idx:
                del ordered[i]


def pergroup_forward(data, seg, h, reorder):
    """One storage's bytes as they are stored -> (bytes in the group stream, row permutation or None)."""
    if not seg["rows"]:
        return data, None
    q = np.frombuffer(data, np.int8).reshape(seg["rows"], seg["cols"])
    perm = pergroup_greedy_order(q) if reorder else None
    if perm is not None:
        q = q[perm]
    return (np.ascontiguousarray(q.T).tobytes() if h.pergroup_transpose else q.tobytes()), perm


def pergroup_backward(data, seg, perm):
    """Inverse of pergroup_forward."""
    if not seg["rows"]:
        return data
    rows, cols = seg["rows"], seg["cols"]
    a = np.frombuffer(data, np.int8)
    q = a.reshape(cols, rows).T if seg["transposed"] else a.reshape(rows, cols)
    if perm is not None:
        back = np.empty_like(q)
        back[perm] = q
        q = back
    return np.ascontiguousarray(q).tobytes()


# ---- the blob ------------------------------------------------------------------------------------------------
def pergroup_pack_streams(streams, choice):
    """Each stream compressed by the smallest of the allowed backends (an empty stream stays stored)."""
    out = [PERGROUP_MAGIC, bytes([PERGROUP_VERSION, len(streams)])]
    for data in streams:
        candidates = [(pergroup_encode(c, data), c) for c in pergroup_available(choice)] if data else []
        blob, codec = min(candidates, key=lambda t: len(t[0]), default=(data, "stored"))
        out += [bytes([PERGROUP_CODECS.index(codec)]), struct.pack("<I", len(blob)), blob]
    return b"".join(out)


def pergroup_unpack_streams(blob):
    if blob[:4] != PERGROUP_MAGIC:
        raise ValueError("not a pergroup blob (no PGRP magic)")
    if blob[4] != PERGROUP_VERSION:
        raise ValueError(f"pergroup format version {blob[4]}: this program reads version {PERGROUP_VERSION}")
    pos, streams = 6, []
    for _ in range(blob[5]):
        codec, size = blob[pos], struct.unpack_from("<I", blob, pos + 1)[0]
        if codec >= len(PERGROUP_CODECS) or pos + 5 + size > len(blob):
            raise ValueError("truncated or corrupt pergroup blob")
        streams.append(pergroup_decode(PERGROUP_CODECS[codec], blob[pos + 5:pos + 5 + size]))
        pos += 5 + size
    return streams


def pergroup_compress(raw):
    """torch.save bytes -> PGRP blob. Stream 0: u32 meta length, meta (JSON: segments and groups), the bytes
    outside every storage, the row permutations, then each group too small for a stream of its own; streams 1..:
    the groups of at least PERGROUP_STREAM_BYTES, values before the rest."""
    h = Hyperparameters
    segs = pergroup_segments(raw)
    roles = sorted({(0 if s["rows"] else 1, s["role"], s["esize"]) for s in segs})  # int8 matrices first
    group_of = {r: i for i, r in enumerate(roles)}
    for s in segs:
        s["group"] = group_of[(0 if s["rows"] else 1, s["role"], s["esize"])]
        s["transposed"] = int(bool(s["rows"]) and h.pergroup_transpose)
    plain = [pergroup_forward(raw[s["start"]:s["start"] + s["length"]], s, h, False) for s in segs]
    ordered = {i: pergroup_forward(raw[s["start"]:s["start"] + s["length"]], s, h, True)
               for i, s in enumerate(segs) if pergroup_reorders(s, h)}
    if h.pergroup_reorder == "auto":
        pergroup_drop_unpaid(ordered, plain, segs, h)
    blocks, perms, skeleton, at = [[] for _ in roles], [], [], 0
    for i, s in enumerate(segs):
        data, perm = ordered.get(i, plain[i])
        s["perm"] = int(perm is not None)
        if perm is not None:
            perms.append(perm.astype(np.uint16 if s["rows"] <= 65536 else np.uint32).tobytes())
        blocks[s["group"]].append(data)
        skeleton.append(raw[at:s["start"]])
        at = s["start"] + s["length"]
    skeleton.append(raw[at:])
    groups = [pergroup_shuffle(b"".join(b), role[2] if h.pergroup_shuffle else 1) for b, role in zip(blocks, roles)]
    own = [i for i, g in enumerate(groups) if h.pergroup_stream_bytes and len(g) >= h.pergroup_stream_bytes][:254]
    meta = json.dumps({"n": len(raw), "shuffle": int(h.pergroup_shuffle), "own": own,
                       "groups": [[len(g), r[2]] for g, r in zip(groups, roles)],
                       "segs": [[s[k] for k in PERGROUP_SEG_KEYS] for s in segs]}, separators=(",", ":")).encode()
    head = [struct.pack("<I", len(meta)), meta, *skeleton, *perms, *(g for i, g in enumerate(groups) if i not in own)]
    return pergroup_pack_streams([b"".join(head), *(groups[i] for i in own)], h.pergroup_backend)


def pergroup_decompress(blob):
    """Inverse of pergroup_compress: the exact torch.save bytes."""
    streams = pergroup_unpack_streams(blob)
    head, pos = streams[0], 4 + struct.unpack_from("<I", streams[0])[0]
    meta = json.loads(head[4:pos])
    segs = [dict(zip(PERGROUP_SEG_KEYS, s)) for s in meta["segs"]]
    skeleton_len = meta["n"] - sum(s["length"] for s in segs)
    skeleton, pos = head[pos:pos + skeleton_len], pos + skeleton_len
    perms = []
    for s in segs:
        size = s["rows"] * (2 if s["rows"] <= 65536 else 4) if s["perm"] else 0
        perms.append(np.frombuffer(head[pos:pos + size], np.uint16 if s["rows"] <= 65536 else np.uint32)
                     .astype(np.int64) if s["perm"] else None)
        pos += size
    groups, own = [], iter(streams[1:])
    for i, (size, esize) in enumerate(meta["groups"]):
        data = next(own) if i in meta["own"] else head[pos:pos + size]
        pos += 0 if i in meta["own"] else size
        groups.append(pergroup_unshuffle(data, esize if meta["shuffle"] else 1))
    taken, raw, cursor, sk = [0] * len(groups), bytearray(meta["n"]), 0, 0
    for s, perm in zip(segs, perms):
        g, start = s["group"], s["start"]
        data = pergroup_backward(groups[g][taken[g]:taken[g] + s["length"]], s, perm)
        taken[g] += s["length"]
        raw[cursor:start] = skeleton[sk:sk + start - cursor]
        sk += start - cursor
        raw[start:start + s["length"]] = data
        cursor = start + s["length"]
    raw[cursor:] = skeleton[sk:]
    if len(raw) != meta["n"]:
        raise ValueError("corrupt pergroup blob (the pieces do not add up to the recorded length)")
    return bytes(raw)
