# ==================================================================================================
# plugins/unet_gated_skips: U-Net skips with a learned sigmoid gate per decoder position and channel
# (PR #1089): x = lerp(w_i * skip, x, sigmoid(g_i)) = w_i * skip + sigmoid(g_i) * (x - w_i * skip)
# ==================================================================================================
from golfc_plugins.unet_blocks.runtime import UNetSkips  # editors and tests only: blanked when emitted

from golfc.runtime.model import CONTROL_TENSOR_NAME_PATTERNS
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

# fp32 in training and in the artifact, trained by the scalar Adam group
CONTROL_TENSOR_NAME_PATTERNS.extend(["skip_gates"])


class GatedUNetSkips(UNetSkips):
    """UNetSkips (the first half of the schedule pushes, the rest pops in reverse) whose decoder position i mixes
    its saved output in through a gate: x = lerp(skip_weights[i] * skip, x, sigmoid(skip_gates[i])).

    skip_gates (n_skip, d) start at zero: at init each skip is an even blend of the stream and the weighted
    skip, not the plain U-Net's sum. The stack owns them (state-dict name stack.skip_gates). With
    SKIP_GATES_ENABLED=0 there are no gates and the mixer is UNetSkips exactly.
    """

    def __init__(self, h, stack):
        super().__init__(h, stack)
        self.gated = h.skip_gates_enabled
        if self.gated:
            stack.skip_gates = nn.Parameter(torch.zeros(self.num_skip, h.model_dim))  # (n_skip, d)

    def mix(self, stack, x, i, skip):  # x, skip (B, T, d); decoder position i
        scaled = stack.skip_weights[i].to(x.dtype) * skip
        if not self.gated:
            return x + scaled
        return torch.lerp(scaled, x, torch.sigmoid(stack.skip_gates[i].to(x.dtype)))
