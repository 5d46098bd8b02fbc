# ==================================================================================================
# plugins/muon_eq_r: MuonEq-R, row-equalised Muon (arXiv 2603.28254; PR #1217/#1260, records 04-03 to 04-27)
# Before the orthogonalisation, each output row of the Nesterov update is divided by its L2 norm.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class MuonRowEqualise:
    """muon_transform stage before_orthogonalise: G[i, row] /= max(||G[i, row]||_2, 1e-7) per output row.

    The stack holds each matrix in its wide orientation; a matrix transposed into it (rows > cols as a
    parameter) has its output rows as the stack's columns, so those are normalised over dim -2 instead."""

    def __init__(self):
        self.enabled = True
        self._masks = {}  # (transposed flags, device) -> (n, 1, 1) bool

    def setup(self, opt):
        self.enabled = bool(opt.h.muon_row_normalize) if opt.h is not None else True

    def before_orthogonalise(self, G, params, transposed, group, opt):
        if not self.enabled:
            return G
        if not any(transposed):  # (n, r, c): every output row is a row of the stack
            return G / G.norm(dim=-1, keepdim=True).clamp_min(1e-7)
        if all(transposed):  # every output row is a column of the stack
            return G / G.norm(dim=-2, keepdim=True).clamp_min(1e-7)
        key = (tuple(transposed), G.device)
        if key not in self._masks:
            self._masks[key] = torch.tensor(transposed, device=G.device).view(-1, 1, 1)
        norms = torch.where(self._masks[key], G.norm(dim=-2, keepdim=True), G.norm(dim=-1, keepdim=True))
        return G / norms.clamp_min(1e-7)


MUON_EQ_R = MuonRowEqualise()
