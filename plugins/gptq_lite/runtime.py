# ==================================================================================================
# plugins/gptq_lite: a quant stage choosing each row's clip among GPTQ_LITE_PERCENTILES of |w| by the
# squared error of the row rounded with it (PR #414 chose per matrix; per row is never worse)
# ==================================================================================================


class GptqLiteStage:
    def clip(self, name, w, qmax, h):
        """(rows,): for every row, the candidate clip whose fp16 scale and rounding give the least squared error."""
        best_clip, best_err = None, None
        for pct in (float(p) for p in h.gptq_lite_percentiles.split(",") if p.strip()):
            clip = lowbit_percentile_clip(w, pct / 100.0)
            scale = lowbit_scale(clip, qmax)
            err = (lowbit_round(w, scale, qmax).float() * scale.float()[:, None] - w).square().sum(dim=1)
            if best_err is None:
                best_clip, best_err = clip, err
            else:
                better = err < best_err
                best_clip, best_err = torch.where(better, clip, best_clip), torch.minimum(err, best_err)
        return best_clip


GPTQ_LITE_STAGE = GptqLiteStage()
