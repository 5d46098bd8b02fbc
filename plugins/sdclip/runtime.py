# ==================================================================================================
# plugins/sdclip: a quant stage choosing each row's clip as k * std(row), k per tensor class (SDClip,
# PR #1394): scale s_i = k * std(w_i) / qmax. A larger k keeps the tails and spends fewer levels on the bulk,
# so the values have lower entropy and compress smaller.
# ==================================================================================================


def sdclip_sigmas(name, h):
    """k of the tensor's class (MLP and attention fall back to SDCLIP_MATRIX_SIGMAS when 0)."""
    cls = lowbit_class(name)
    if cls == "embed":
        return h.sdclip_embed_sigmas
    k = {"mlp": h.sdclip_mlp_sigmas, "attn": h.sdclip_attn_sigmas}.get(cls, 0.0)
    return k if k > 0 else h.sdclip_matrix_sigmas


class SdClipStage:
    def clip(self, name, w, qmax, h):
        """(rows,) clip: k * the row's standard deviation (population), (no search)."""
        return sdclip_sigmas(name, h) * w.float().std(dim=1, unbiased=False)


SDCLIP_STAGE = SdClipStage()
