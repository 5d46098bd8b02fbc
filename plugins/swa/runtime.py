# ==================================================================================================
# plugins/swa: stochastic weight averaging over the warmdown: every SWA_EVERY steps while the LR
# multiplier is below SWA_START_FRAC, the weights are added to an fp32 sum; the uniform average is
# loaded before export (2026-03-20 Int6 MLP3x SWA record: every 50 steps once lr_mul < 0.5)
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class SwaAverager:
    """Uniform average of snapshots of the whole state dict (fp32 sum on the model's device)."""

    def __init__(self, model, h):
        self.every, self.start_frac = h.swa_every, h.swa_start_frac
        state = model.state_dict()
        self.names = [k for k, v in state.items() if v.is_floating_point()]
        self.total = [torch.zeros_like(state[k], dtype=torch.float32) for k in self.names]
        self.count, self.steps = 0, []

    @torch.no_grad()
    def update(self, model, step, lr_mul):
        """step: optimizer steps done; lr_mul: the multiplier that step used."""
        if lr_mul >= self.start_frac or step % self.every != 0:
            return
        state = model.state_dict()
        torch._foreach_add_(self.total, [state[k].detach().float() for k in self.names])
        self.count += 1
        self.steps.append(step)

    @torch.no_grad()
    def apply(self, model):
        if self.count == 0:  # the warmdown never reached SWA_START_FRAC at a multiple of SWA_EVERY
            log0(f"swa: no snapshot taken (SWA_EVERY={self.every}, SWA_START_FRAC={self.start_frac}); "
                 "exporting the last weights")
            return
        state = model.state_dict()
        for name, total in zip(self.names, self.total):
            state[name].copy_(total / self.count)
        log0(f"swa: loaded the average of {self.count} snapshots (steps {self.steps[0]}..{self.steps[-1]})")
