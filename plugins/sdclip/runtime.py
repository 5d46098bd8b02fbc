# ==================================================================================================
# plugins/sdclip: a quant stage choosing each row's clip as k * std(row), k per tensor class (SDClip,
# PR #1394): scale s_i = k * std(w_i) / qmax. A larger k keeps the tails and spends fewer levels on the bulk,
# so the values have lower entropy and compress smaller.
# Hessian-aware form (PR #1412), HESSIAN_CLIP_LAMBDA = lambda > 0, with gptq's Hessians:
#   d = diag(H) (dead columns 1, plus GPTQ_DAMP * mean), c_j = d_j / mean(d)   column importance
#   r_i = mean_j |w_ij| c_j, normalised to mean 1                                 row importance
#   clip_i = k * std(w_i) * (1 + lambda * (r_i - 1))
# ==================================================================================================


def sdclip_sigmas(name, h):
    """k of the tensor's class (MLP and attention fall back to SDCLIP_MATRIX_SIGMAS when 0)."""
    cls = lowbit_class(name)
    if cls == "embed":
        return h.sdclip_embed_sigmas
    k = {"mlp": h.sdclip_mlp_sigmas, "attn": h.sdclip_attn_sigmas}.get(cls, 0.0)
    return k if k > 0 else h.sdclip_matrix_sigmas


def sdclip_row_importance(w, H, damp):
    """w (rows, cols), H (cols, cols) -> (rows,) mean 1: how much each row's weights meet high-curvature inputs."""
    d = torch.diag(H).float().clone()
    d[d == 0] = 1.0
    d = d + damp * d.mean()
    r = (w.abs() * (d / d.mean())[None, :]).mean(dim=1)
    return r / r.mean()


class SdClipStage:
    def prepare(self, model, state, h, ctx, calibration):
        if h.hessian_clip_lambda > 0 and not lowbit_stage_methods("hessian"):
            raise ValueError(f"HESSIAN_CLIP_LAMBDA={h.hessian_clip_lambda} needs Hessians: add the gptq plugin "
                             "(or set HESSIAN_CLIP_LAMBDA=0)")

    def clip(self, name, w, qmax, h):
        """(rows,) clip: k * the row's standard deviation (population), (no search), modulated by row importance
        when HESSIAN_CLIP_LAMBDA > 0 and the matrix has a Hessian."""
        clip = sdclip_sigmas(name, h) * w.float().std(dim=1, unbiased=False)
        H = lowbit_hessian(name) if h.hessian_clip_lambda > 0 else None
        if H is None or H.size(0) != w.size(1):
            return clip
        r = sdclip_row_importance(w.float(), H.to(w.device), getattr(h, "gptq_damp", 0.01))
        return clip * (1.0 + h.hessian_clip_lambda * (r - 1.0))


SDCLIP_STAGE = SdClipStage()
"""sdclip: the row clip is k standard deviations of the row (no search), k per tensor class."""
