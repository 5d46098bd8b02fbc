# ==================================================================================================
# plugins/parallel_residuals: attention and MLP side by side from a chosen layer on.
#   GPT-J form (PR #1412, #1493): x_in = mix(x, x0); x = x_in + a * attn(n(x_in)) + m * mlp(n(x_in))
#   two-lane form (PR #1204, #1530): lane 0 carries attention (and the U-Net skips), lane 1 the MLP:
#     A = a * attn(n(mix(lane0, x0))), M = m * mlp(n(lane1))
#     lane0 = r0 * lane0 + P00 * A + P10 * M;  lane1 = r1 * lane1 + P01 * A + P11 * M;  output (lane0 + lane1) / 2
# ==================================================================================================
from golfc_plugins.unet_blocks.runtime import UNetBlock  # editors and tests only: blanked when emitted

from golfc.runtime.model import CONTROL_TENSOR_NAME_PATTERNS
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

# fp32, scalar Adam, exact in the artifact
CONTROL_TENSOR_NAME_PATTERNS.extend(["parallel_resid_lambdas", "parallel_post_lambdas"])


def parallel_form(h, layer):
    """'lanes' from PARALLEL_START_LAYER on, else 'gptj' from PARALLEL_RESIDUAL_START on, else None (sequential)."""
    if 0 <= h.parallel_start_layer <= layer:
        return "lanes"
    if 0 <= h.parallel_residual_start <= layer:
        return "gptj"
    return None


class ParallelResidualBlock(UNetBlock):
    """The block slot: UNetBlock (resid_mix, attn_scale, mlp_scale; the same parameters and names) on layers before
    the parallel ones, the GPT-J or the two-lane form from there on (the formulas above).

    Two lanes: the stream the stack hands from block to block (and the skip mixer adds the U-Net skips to) is lane
    0; lane 1 lives in the forward's cache. The first two-lane block starts lane 1 from the previous block's output
    (the stream before that position's skip, as the records start both lanes from it); the block at the schedule's
    last position returns the final lane (PARALLEL_FINAL_LANE), and a sequential layer after two-lane ones (only a
    hand-made schedule does that) first merges the lanes the same way. parallel_resid_lambdas (2,) start at 1.1 and
    parallel_post_lambdas (2, 2) [source attn|mlp, lane 0|1] at 1, as in the records (per layer here, (L, 2) and
    (L, 2, 2) there).
    """

    def __init__(self, h, layer):
        super().__init__(h, layer)
        self.form, self.final_lane = parallel_form(h, layer), h.parallel_final_lane
        if self.form == "lanes":
            self.parallel_resid_lambdas = nn.Parameter(torch.full((2,), 1.1, dtype=torch.float32))
            self.parallel_post_lambdas = nn.Parameter(torch.ones(2, 2, dtype=torch.float32))

    def norm(self, x, fctx):
        """The pre-norm of the parallel forms' attention and MLP inputs (x (B, T, d)): the block_norm slot (the
        baseline's rms_norm, or ln_scale's scaled one)."""
        return block_norm(x, self.layer, self.h, fctx)

    def merge(self, lane0, lane1):
        return lane0 if self.final_lane == "attn" else lane1 if self.final_lane == "mlp" else 0.5 * (lane0 + lane1)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        lanes = fctx.cache.get("parallel_lane1")
        if self.form != "lanes":
            if lanes is not None:  # a sequential layer after the lanes: merge them first
                x = self.merge(x, fctx.cache.pop("parallel_lane1"))
            x = self.gptj(x, x0, fctx) if self.form == "gptj" else super().forward(x, x0, fctx)
            fctx.cache["parallel_last_out"] = x  # where a first two-lane block starts lane 1 (no tensor op)
            return x
        lane0, lane1 = x, lanes if lanes is not None else fctx.cache.get("parallel_last_out", x)
        mix = self.resid_mix.to(x.dtype)
        attn = self.attn_scale.to(x.dtype) * self.attn(self.norm(mix[0] * lane0 + mix[1] * x0, fctx), fctx)
        mlp = self.mlp_scale.to(x.dtype) * self.mlp(self.norm(lane1, fctx), fctx)
        r, p = self.parallel_resid_lambdas.to(x.dtype), self.parallel_post_lambdas.to(x.dtype)
        lane0 = r[0] * lane0 + p[0, 0] * attn + p[1, 0] * mlp
        lane1 = r[1] * lane1 + p[0, 1] * attn + p[1, 1] * mlp
        if fctx.depth == len(fctx.schedule) - 1:  # the stack's last block: one stream again
            fctx.cache.pop("parallel_lane1", None)
            return self.merge(lane0, lane1)
        fctx.cache["parallel_lane1"] = lane1
        return lane0

    def gptj(self, x, x0, fctx):
        """x_in = resid_mix blend of x and x0; x_in + attn_scale * attn(n(x_in)) + mlp_scale * mlp(n(x_in))."""
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        n = self.norm(x, fctx)
        return x + self.attn_scale.to(x.dtype) * self.attn(n, fctx) + self.mlp_scale.to(x.dtype) * self.mlp(n, fctx)
