# ==================================================================================================
# plugins/unet_blocks: pre-norm blocks with residual mixing to x0, and U-Net skips between the
# encoder half and the decoder half of the stack (modded-nanogpt)
# ==================================================================================================
from golfc.runtime.model import CausalSelfAttention, rms_norm
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class UNetBlock(nn.Module):
    """Pre-norm attention and MLP, each scaled per channel, after mixing the stream with the embedding x0."""

    def __init__(self, h, layer):
        super().__init__()
        d = h.model_dim
        self.attn = CausalSelfAttention(h, layer)
        self.mlp = MLP(h, layer)
        self.attn_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))).float())  # (2, d)

    def forward(self, x, x0):  # (B, T, d) each
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0  # learned blend of the stream with the embedding
        x = x + self.attn_scale.to(x.dtype) * self.attn(rms_norm(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x))


class UNetBlockStack(nn.Module):
    """The first L//2 blocks push their outputs; each decoder block first adds skip_weights[i] * pop()."""

    def __init__(self, h):
        super().__init__()
        self.num_encoder = h.num_layers // 2
        num_decoder = h.num_layers - self.num_encoder
        self.blocks = nn.ModuleList([UNetBlock(h, i) for i in range(h.num_layers)])
        self.skip_weights = nn.Parameter(torch.ones(min(self.num_encoder, num_decoder), h.model_dim))

    def forward(self, x, x0):  # (B, T, d) each
        skips = []
        for block in self.blocks[: self.num_encoder]:
            x = block(x, x0)
            skips.append(x)
        for i, block in enumerate(self.blocks[self.num_encoder :]):
            if skips:
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            x = block(x, x0)
        return x
