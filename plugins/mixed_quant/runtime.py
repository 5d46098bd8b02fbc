# ==================================================================================================
# plugins/mixed_quant: the low-bit quantizer of plugins/int6 with bits per tensor class (QUANT_*_BITS)
# ==================================================================================================
MIXED_LABEL = "mixed"
