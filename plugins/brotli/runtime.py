# ==================================================================================================
# plugins/brotli: artifact compression with Brotli at BROTLI_QUALITY (11); with BYTE_SHUFFLE=s the bytes are
# first regrouped by their position modulo s (b"BSHF" + s + raw[0::s] + raw[1::s] + ...): the records' form
# ==================================================================================================
try:
    import brotli
except ImportError:  # one line before anything runs, not a traceback after training
    if __name__ == "__main__":
        print("error: the brotli compressor needs the Python package 'brotli' (pip install brotli)", file=sys.stderr)
        sys.exit(2)
    brotli = None

BROTLI_LABEL = "brotli"
BROTLI_SHUFFLE_MAGIC = b"BSHF"


def brotli_shuffle(raw, stride):
    """raw -> BSHF, stride, then the bytes at positions 0, s, 2s, ..., then 1, s+1, ... (invertible)."""
    return BROTLI_SHUFFLE_MAGIC + bytes([stride]) + b"".join(raw[i::stride] for i in range(stride))


def brotli_unshuffle(data):
    stride, body = data[len(BROTLI_SHUFFLE_MAGIC)], data[len(BROTLI_SHUFFLE_MAGIC) + 1:]
    n = len(body)
    sizes = [n // stride + (1 if i < n % stride else 0) for i in range(stride)]
    out, start = bytearray(n), 0
    for i, size in enumerate(sizes):
        out[i::stride] = body[start:start + size]
        start += size
    return bytes(out)


def brotli_compress(raw):
    h = Hyperparameters
    data = brotli_shuffle(raw, h.byte_shuffle) if h.byte_shuffle > 1 else raw
    return brotli.compress(data, quality=h.brotli_quality)


def brotli_decompress(blob):
    data = brotli.decompress(blob)
    return brotli_unshuffle(data) if data.startswith(BROTLI_SHUFFLE_MAGIC) else data
