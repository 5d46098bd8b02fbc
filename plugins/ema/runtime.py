# ==================================================================================================
# plugins/ema: an fp32 shadow of every weight, ema = d * ema + (1 - d) * w after each optimizer step,
# loaded into the model before export (EMA from the 03-20 XSA4 record, PR #287; d = 0.997)
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class EmaAverager:
    """Exponential moving average of the whole state dict, kept in fp32 on the model's device.

    It starts from the weights the timed training starts from (after the compile warmup's reset); apply()
    copies the average into the model (cast back to each tensor's dtype), so the exported artifact and
    every later evaluation use the averaged weights.
    """

    def __init__(self, model, h):
        self.decay = h.ema_decay
        state = model.state_dict()
        self.names = [k for k, v in state.items() if v.is_floating_point()]
        self.shadow = [state[k].detach().float().clone() for k in self.names]

    @torch.no_grad()
    def update(self, model, step, lr_mul):
        state = model.state_dict()
        current = [state[k].detach().float() for k in self.names]  # a view for fp32 weights, a copy for bf16
        torch._foreach_mul_(self.shadow, self.decay)
        torch._foreach_add_(self.shadow, current, alpha=1.0 - self.decay)

    @torch.no_grad()
    def apply(self, model):
        state = model.state_dict()
        for name, avg in zip(self.names, self.shadow):
            state[name].copy_(avg)  # in place: cast to the parameter's dtype
        log0(f"ema: loaded the average of the weights (decay {self.decay})")
