# ==================================================================================================
# plugins/lzma: artifact compression with LZMA (xz container), preset LZMA_PRESET (| extreme)
# ==================================================================================================
import lzma

LZMA_LABEL = "lzma"


def lzma_compress(raw):
    h = Hyperparameters
    return lzma.compress(raw, preset=h.lzma_preset | (lzma.PRESET_EXTREME if h.lzma_extreme else 0))


def lzma_decompress(blob):
    return lzma.decompress(blob)
