# ==================================================================================================
# plugins/parallel_muon: Parallel Muon (PR #399; 2026-03-23_..._ParallelMuon, PR #549, and the banked records
# after it). Plain Muon all-reduces every gradient, orthogonalises its share of the matrices and all-reduces
# a mostly-zero buffer of updates; here Muon's gradients are reduce-scattered right after the backward (each
# rank receives the mean of only the matrices it owns, while Adam steps), and the updates are all-gathered.
# Same ownership (index within a shape group mod world size), same math: the same update as plain Muon.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

_reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor  # torch 2.13 renamed
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def parallel_muon_layout(params, world_size):
    """Muon's shape groups (same (min dim, max dim), in parameter order) as lists of parameter indices; member j
    of a group belongs to rank j % world_size and sits in row (j % world_size) * per + j // world_size of the
    group's (per * world_size, numel) buffer, per = ceil(n / world_size): rank r's rows are one contiguous block."""
    groups = {}
    for i, p in enumerate(params):
        groups.setdefault((min(p.shape), max(p.shape)), []).append(i)
    return [(members, -(-len(members) // world_size)) for members in groups.values()]


def parallel_muon_row(j, per, world_size):
    return (j % world_size) * per + j // world_size


class ParallelMuon:
    """muon_transform: before_update waits for this group's reduce-scatters and hands each owned matrix its
    averaged gradient; exchange (exclusive) all-gathers the bf16 updates, one collective per shape group, all
    launched before the first is applied."""

    def __init__(self):
        self.opt, self.pending = None, []  # pending: (handle, out (per, numel), [(row, param)]) per shape group

    def setup(self, opt):
        if opt.distributed and opt.h is not None and opt.h.grad_clip_norm > 0:
            raise RunInputError(f"parallel_muon: GRAD_CLIP_NORM={opt.h.grad_clip_norm:g} would clip before Muon's "
                                "gradients are averaged (each rank holds only its share); set GRAD_CLIP_NORM=0")
        self.opt, self.pending = opt, []

    def before_update(self, params, group, opt):
        for handle, out, owned in self.pending:
            handle.wait()
            out /= opt.world_size  # SUM, then divide: gloo has no AVG
            if owned:
                torch._foreach_copy_([p.grad for _, p in owned], [out[t].view_as(p.grad) for t, p in owned])
        self.pending = []

    def exchange(self, params, updates, group, opt):
        ws, rank, gathers = opt.world_size, opt.rank, []
        for members, per in parallel_muon_layout(params, ws):
            numel, device = params[members[0]].numel(), params[members[0]].device
            mine = torch.zeros(per, numel, device=device, dtype=torch.bfloat16)  # no grad, no update: row stays 0
            for t, j in enumerate(range(rank, len(members), ws)):
                if members[j] in updates:
                    mine[t].copy_(updates[members[j]].reshape(-1))  # back in the parameter's layout
            full = torch.empty(per * ws, numel, device=device, dtype=torch.bfloat16)
            gathers.append((_all_gather(full, mine, async_op=True), full, members, per))
        for handle, full, members, per in gathers:
            handle.wait()
            live = [(j, params[i]) for j, i in enumerate(members) if params[i].grad is not None]
            if live:
                rows = [full[parallel_muon_row(j, per, ws)].view_as(p) for j, p in live]
                torch._foreach_add_([p for _, p in live], rows, alpha=-group["lr"])  # bf16 update, added in fp32


PARALLEL_MUON = ParallelMuon()


def parallel_muon_average(params, ctx):
    """grad_average slot: launch one asynchronous reduce-scatter (SUM) per shape group of Muon's matrices, then
    average every other gradient with the flat all-reduce (plugins/flat_allreduce). Muon's before_update waits
    and divides; until then a Muon matrix's .grad is this rank's own (clipping is refused at setup)."""
    opt = PARALLEL_MUON.opt
    muon_params = {id(p) for g in opt.param_groups for p in g["params"]} if opt is not None else set()
    PARALLEL_MUON.pending = []
    for group in opt.param_groups if opt is not None else ():
        group_params = group["params"]
        for members, per in parallel_muon_layout(group_params, ctx.world_size):
            first = group_params[members[0]]
            buf = torch.zeros(per * ctx.world_size, first.numel(), device=first.device, dtype=first.dtype)
            rows = [(buf[parallel_muon_row(j, per, ctx.world_size)], group_params[i].grad)
                    for j, i in enumerate(members) if group_params[i].grad is not None]
            if rows:
                torch._foreach_copy_([r for r, _ in rows], [g.reshape(-1) for _, g in rows])
            out = torch.empty(per, first.numel(), device=first.device, dtype=first.dtype)
            owned = [(t, group_params[members[j]]) for t, j in enumerate(range(ctx.rank, len(members), ctx.world_size))
                     if group_params[members[j]].grad is not None]
            PARALLEL_MUON.pending.append((_reduce_scatter(out, buf, async_op=True), out, owned))
    all_reduce_grads([p for p in params if id(p) not in muon_params], ctx)
