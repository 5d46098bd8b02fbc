# ==================================================================================================
# plugins/fp16_keep: a quant stage that keeps the tensors named by FP16_KEEP_NAME_PATTERNS in fp16
# ==================================================================================================


class Fp16KeepStage:
    """plan: 16 bits (kept fp16) for a tensor whose name contains one of the patterns."""

    def plan(self, name, t, bits, h):
        patterns = [p.strip() for p in h.fp16_keep_name_patterns.split(",") if p.strip()]
        return 16 if bits < 16 and any(p in name for p in patterns) else bits


FP16_KEEP_STAGE = Fp16KeepStage()
