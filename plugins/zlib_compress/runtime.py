# ==================================================================================================
# plugins/zlib_compress: artifact compression with zlib at level 9
# ==================================================================================================
import zlib

ZLIB_LABEL = "zlib"


def zlib_compress(raw):
    return zlib.compress(raw, level=9)


def zlib_decompress(blob):
    return zlib.decompress(blob)
