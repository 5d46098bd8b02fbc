# ==================================================================================================
# plugins/relu2_mlp: feed-forward block y = proj(relu(fc(x))^2)   (relu^2: modded-nanogpt)
# ==================================================================================================
from golfc.runtime.model import CastedLinear
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class ReluSquaredMLP(nn.Module):
    """d -> MLP_MULT * d -> d with relu(x)^2 between: sparse like relu, smooth at 0; no biases."""

    def __init__(self, h, layer):
        super().__init__()
        hidden = h.mlp_mult * h.model_dim
        self.fc = CastedLinear(h.model_dim, hidden)
        self.proj = CastedLinear(hidden, h.model_dim, zero_init=True)  # each block starts as the identity

    def forward(self, x, fctx=None):  # (B, T, d) -> (B, T, d); fctx: the forward's ForwardContext (unused here)
        return self.proj(torch.relu(self.fc(x)).square())
