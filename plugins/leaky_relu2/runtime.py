# ==================================================================================================
# plugins/leaky_relu2: feed-forward block y = proj(leaky_relu(fc(x), 0.5)^2)   (LeakyReLU^2: PR #493,
# adopted by the 2026-03-23 record, PR #549)
# ==================================================================================================
from golfc.runtime.model import CastedLinear
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def leaky_relu_square(pre, slope):
    """leaky_relu(pre, slope)^2: pre^2 above 0, (slope * pre)^2 below; the gradient is 2*pre or 2*slope^2*pre."""
    return F.leaky_relu(pre, slope).square()


class LeakyReluSquaredMLP(nn.Module):
    """d -> MLP_MULT * d -> d with leaky_relu(x, NEGATIVE_SLOPE)^2 between; no biases. Unlike relu^2,
    negative pre-activations keep a (slope^2-damped) gradient, so no hidden unit dies."""

    def __init__(self, h, layer):
        super().__init__()
        hidden = h.mlp_mult * h.model_dim
        self.slope = h.negative_slope
        self.fc = CastedLinear(h.model_dim, hidden)
        self.proj = CastedLinear(hidden, h.model_dim, zero_init=True)  # each block starts as the identity

    def forward(self, x, fctx=None):  # (B, T, d) -> (B, T, d); fctx: the forward's ForwardContext (unused here)
        return self.proj(leaky_relu_square(self.fc(x), self.slope))  # hidden (B, T, MLP_MULT * d)
