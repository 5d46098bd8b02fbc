# ==================================================================================================
# plugins/normuon: NorMuon (arXiv 2510.05491; PR-branch folder 2026-03-19_NorMuon_Int6STE_SWA_SlidingWindow)
# After the orthogonalisation each output neuron (row of the parameter) gets its own step size from an EMA
# of its mean squared update, as Adam gives each weight its own; the matrix keeps its orthogonalised norm.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class NorMuon:
    """muon_transform stage after_orthogonalise, per matrix U (out, in) of the stack (orthogonalised):

        v = beta2 * v + (1 - beta2) * mean_j U[i, j]^2      per output row i   (v: opt.state[p]["normuon_v"])
        U' = U / (sqrt(v / (1 - beta2^t)) + 1e-8)           bias-corrected; t = the matrix's NorMuon steps
        U' *= ||U||_F / ||U'||_F                            NORMUON_KEEP_NORM=1 (the record's form)

    In the stack a matrix transposed into it has its output rows as the stack's columns. Returns fp32: Muon
    multiplies by the shape scale and rounds to bf16 once."""

    def __init__(self):
        self.beta2, self.keep_norm = 0.95, True

    def setup(self, opt):
        if opt.h is not None:
            self.beta2, self.keep_norm = float(opt.h.muon_beta2), bool(opt.h.normuon_keep_norm)

    def after_orthogonalise(self, X, params, transposed, group, opt):
        U = X.float()  # (n, r, c)
        sq = U.square()
        row_ms, col_ms = sq.mean(dim=-1), sq.mean(dim=-2)  # (n, r), (n, c): mean square of each row, column
        vs, ms, corrections = [], [], []
        for i, (p, t) in enumerate(zip(params, transposed)):
            state = opt.state[p]
            if "normuon_v" not in state:
                state["normuon_v"] = torch.zeros(p.size(0), device=p.device, dtype=torch.float32)  # (out,)
                state["normuon_step"] = 0
            state["normuon_step"] += 1
            vs.append(state["normuon_v"])
            ms.append(col_ms[i] if t else row_ms[i])
            corrections.append(1.0 - self.beta2 ** state["normuon_step"])
        torch._foreach_lerp_(vs, ms, 1.0 - self.beta2)  # v += (1 - beta2) * (ms - v)
        denominators = torch._foreach_div(vs, corrections)
        torch._foreach_sqrt_(denominators)
        torch._foreach_add_(denominators, 1e-8)
        shape = U.shape[1:]
        D = torch.stack([(d.view(1, -1) if t else d.view(-1, 1)).expand(shape)
                         for d, t in zip(denominators, transposed)])  # (n, r, c)
        Y = U / D
        if self.keep_norm:
            norm_o = torch.linalg.vector_norm(U, dim=(1, 2), keepdim=True)
            Y = Y * (norm_o / torch.linalg.vector_norm(Y, dim=(1, 2), keepdim=True).clamp_min(1e-10))
        return Y


NORMUON = NorMuon()
