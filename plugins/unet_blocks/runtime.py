# ==================================================================================================
# plugins/unet_blocks: the baseline's block, layer schedule and skip mixer: pre-norm blocks with residual
# mixing to x0, run in order, and U-Net skips between the encoder half and the decoder half (modded-nanogpt)
# ==================================================================================================
from golfc.runtime.model import CausalSelfAttention, rms_norm
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class UNetBlock(nn.Module):
    """Pre-norm attention and MLP (block_norm slot: rms_norm by default), each scaled per channel, after mixing the
    stream with the embedding x0."""

    def __init__(self, h, layer):
        super().__init__()
        d = h.model_dim
        self.h, self.layer = h, layer
        self.attn = CausalSelfAttention(h, layer)
        self.mlp = MLP(h, layer)
        self.attn_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(d, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))).float())  # (2, d)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0  # learned blend of the stream with the embedding
        x = x + self.attn_scale.to(x.dtype) * self.attn(block_norm(x, self.layer, self.h, fctx), fctx)
        return x + self.mlp_scale.to(x.dtype) * self.mlp(block_norm(x, self.layer, self.h, fctx))


def unet_block_norm(x, layer, h, fctx):
    """The block_norm slot's default: the baseline's pre-norm, RMSNorm without a learned weight."""
    return rms_norm(x)


def unet_layer_schedule(h, phases):
    """Every block once, in order: 0, 1, .., NUM_LAYERS-1."""
    return tuple(range(h.num_layers))


class UNetSkips:
    """The first L//2 blocks of the schedule push their outputs; each later one first adds skip_weights[i] * pop()
    (the stack owns skip_weights: state-dict name stack.skip_weights)."""

    def __init__(self, h, stack):
        self.num_encoder = h.num_layers // 2
        stack.skip_weights = nn.Parameter(torch.ones(min(self.num_encoder, h.num_layers - self.num_encoder), h.model_dim))

    def before(self, stack, x, depth, fctx):  # x (B, T, d), before the block at position `depth`
        skips = fctx.cache.setdefault("unet_skips", [])
        if depth >= self.num_encoder and skips:
            x = x + stack.skip_weights[depth - self.num_encoder].to(x.dtype) * skips.pop()
        return x

    def after(self, stack, x, depth, fctx):  # x (B, T, d), the block's output
        if depth < self.num_encoder:
            fctx.cache.setdefault("unet_skips", []).append(x)
        return x
