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
        return x + self.mlp_scale.to(x.dtype) * self.mlp(block_norm(x, self.layer, self.h, fctx), fctx)


def unet_block_norm(x, layer, h, fctx):
    """The block_norm slot's default: the baseline's pre-norm, RMSNorm without a learned weight."""
    return rms_norm(x)


def unet_layer_schedule(h, phases):
    """Every block once, in order: 0, 1, .., NUM_LAYERS-1."""
    return tuple(range(h.num_layers))


def unet_schedules(h):
    """Every layer schedule a run can take: no phase, then the run_events' declared phases (RunEvents.phases of
    each class) switched on one by one in the order of their fractions, as the compile warmup and the timed loop
    switch them. A skip mixer sizes its weights by the longest (depth recurrence lengthens the schedule)."""
    plan = sorted((float(f), name) for cls in RUN_EVENTS for name, f in dict(cls.phases).items())
    return [layer_schedule(h, tuple(sorted(name for _, name in plan[:i]))) for i in range(len(plan) + 1)]


class UNetSkips:
    """The first half of the schedule's positions (len(fctx.schedule) // 2: the encoder) push their outputs; each
    later position i first adds skip_weights[i - half] * pop() while weights and saved outputs last (the stack
    owns skip_weights: state-dict name stack.skip_weights, one row per skip of the longest schedule)."""

    def __init__(self, h, stack):
        self.num_skip = max(min(len(s) // 2, len(s) - len(s) // 2) for s in unet_schedules(h))
        stack.skip_weights = nn.Parameter(torch.ones(self.num_skip, h.model_dim))

    def before(self, stack, x, depth, fctx):  # x (B, T, d), before the block at position `depth`
        skips, i = fctx.cache.setdefault("unet_skips", []), depth - len(fctx.schedule) // 2
        if 0 <= i < self.num_skip and skips:
            x = self.mix(stack, x, i, skips.pop())
        return x

    def mix(self, stack, x, i, skip):  # decoder position i: x + skip_weights[i] * skip
        return x + stack.skip_weights[i].to(x.dtype) * skip

    def after(self, stack, x, depth, fctx):  # x (B, T, d), the block's output
        if depth < len(fctx.schedule) // 2:
            fctx.cache.setdefault("unet_skips", []).append(x)
        return x
