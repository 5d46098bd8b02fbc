# ==================================================================================================
# plugins/flat_allreduce: gradient averaging over ranks, one flat all-reduce per dtype after the backward
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def all_reduce_grads(params, ctx):
    """Average gradients over ranks with one all-reduce per dtype after the whole backward.

    Not DDP: DDP's bucketed all-reduces overlap the backward but cut the compiled graph into pieces, and a rank
    stepped slower that way at the eight-GPU shape (bench/dist_step.py, bench/RESULTS.md session 6).
    """
    by_dtype = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat /= ctx.world_size
        torch._foreach_copy_(grads, [f.view_as(g) for f, g in zip(flat.split([g.numel() for g in grads]), grads)])
