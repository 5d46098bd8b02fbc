# ==================================================================================================
# plugins/zstd: artifact compression with Zstandard at ZSTD_LEVEL (22); the package is checked at start-up
# ==================================================================================================
try:
    import zstandard
except ImportError:  # one line before anything runs, not a traceback after training
    if __name__ == "__main__":
        print("error: the zstd compressor needs the Python package 'zstandard' (pip install zstandard)",
              file=sys.stderr)
        sys.exit(2)
    zstandard = None

ZSTD_LABEL = "zstd"


def zstd_compress(raw):
    return zstandard.ZstdCompressor(level=Hyperparameters.zstd_level).compress(raw)


def zstd_decompress(blob):
    return zstandard.ZstdDecompressor().decompress(blob)
