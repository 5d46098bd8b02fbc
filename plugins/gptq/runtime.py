# ==================================================================================================
# plugins/gptq: full-Hessian GPTQ (Frantar et al. 2022) as a quant stage of the low-bit engine.
# prepare: forward GPTQ_CALIB_BATCHES calibration batches through the trained model and accumulate, for every
#   CastedLinear, H = sum X^T X of its inputs (the tied embedding: of the final-norm output that the head reads),
#   summed over ranks; the calibration then ends (its clock is logged by core/train).
# round: per matrix, with the row scales already chosen (percentile clip, or sdclip / gptq_lite):
#   damp = GPTQ_DAMP * mean(diag H); dead columns (diag 0) zeroed; columns in descending diag(H) order;
#   U = upper Cholesky factor of H^-1; blocks of GPTQ_BLOCK_SIZE columns; each column rounded, its error
#   e = (w - q s) / U[j, j] fed back into the later columns: W[:, j:] -= e U[j, j:].
# ==================================================================================================
from golfc.runtime.model import CastedLinear, rms_norm
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def gptq_collect_hessians(model, h, ctx, calibration):
    """{state-dict name: H (in, in) fp32 on ctx.device} over the calibration batches, summed over ranks."""
    hessians, hooks = {}, []

    def accumulate(name, x):
        x = x.detach().reshape(-1, x.size(-1)).float()
        if name not in hessians:
            hessians[name] = torch.zeros(x.size(1), x.size(1), device=x.device)
        hessians[name].addmm_(x.T, x)

    for name, module in model.named_modules():
        if isinstance(module, CastedLinear):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, key=f"{name}.weight": accumulate(key, args[0])))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), bf16_autocast(ctx.device):
            for x in calibration.batches(h.gptq_calib_batches):
                hidden = model.hidden(x)
                if model.lm_head is None:  # the tied head multiplies the final-norm output with tok_emb
                    accumulate("tok_emb.weight", rms_norm(hidden))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if ctx.distributed:
        for name in sorted(hessians):
            dist.all_reduce(hessians[name])
    return hessians


def gptq_round(w, scale, qmax, H, block_size=128, damp=0.01):
    """w (rows, cols) fp32, scale (rows,) fp16, H (cols, cols) -> q int8 (rows, cols) in [-qmax, qmax] (CPU)."""
    device = H.device
    W, H = w.to(device=device, dtype=torch.float32).clone(), H.to(torch.float32).clone()
    s = scale.to(device=device, dtype=torch.float32)
    cols = W.size(1)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H.diagonal().add_(damp * torch.diag(H).mean())
    perm = torch.argsort(torch.diag(H), descending=True)
    W, H = W[:, perm], H[perm][:, perm]
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1, E1, U1 = W[:, i1:i2].clone(), torch.zeros_like(W[:, i1:i2]), U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            q = torch.clamp(torch.round(W1[:, i] / s), -qmax, qmax)
            Q[:, i1 + i] = q
            err = (W1[:, i] - q * s) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            E1[:, i] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return Q[:, torch.argsort(perm)].to(torch.int8).cpu()


class GptqStage:
    """prepare collects the Hessians; round rounds every matrix that has one (the others: round to nearest)."""

    def __init__(self):
        self.hessians = {}

    def prepare(self, model, state, h, ctx, calibration):
        t0 = time.perf_counter()
        self.hessians = gptq_collect_hessians(model, h, ctx, calibration)
        calibration.finished()
        log0(f"gptq: hessians of {len(self.hessians)} matrices in {time.perf_counter() - t0:.2f}s")

    def hessian(self, name):
        """The collected H of a matrix (shared with other stages: sdclip's Hessian-aware clip), or None."""
        return self.hessians.get(name)

    def round(self, name, w, scale, qmax, h):
        H = self.hessians.get(name)
        if H is None or H.size(0) != w.size(1):
            return None
        return gptq_round(w, scale, qmax, H, h.gptq_block_size, h.gptq_damp)


GPTQ_STAGE = GptqStage()
