# ==================================================================================================
# plugins/muon: Muon for the block matrices, Adam for embeddings, head and control tensors
# Muon: K. Jordan, modded-nanogpt (Nesterov momentum, then Newton-Schulz orthogonalisation)
# ==================================================================================================
from golfc.runtime.model import CastedLinear, param_tag
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

MUON_NS_COEFFS = (3.4445, -4.7750, 2.0315)  # quintic iteration tuned for speed, not exact convergence


def muon_newton_schulz(G, steps):
    """Approximately orthogonalise a stack of matrices: G (n, r, c) with r <= c -> (n, r, c) bf16.

    Batched matmuls over the stack; per matrix it is the same math as one call on that matrix.
    """
    a, b, c = MUON_NS_COEFFS
    X = G.bfloat16()
    X = X / (torch.linalg.vector_norm(X, dim=(1, 2), keepdim=True) + 1e-7)  # ||X||_F <= 1
    for _ in range(steps):
        A = X @ X.mT  # (n, r, r)
        X = a * X + (b * A + c * (A @ A)) @ X
    return X


class Muon(torch.optim.Optimizer):
    """buf = m*buf + g;  g' = g + m*buf;  p -= lr * NS(g') * max(1, rows/cols)^0.5.

    Matrices are grouped by (transposed) shape and orthogonalised as one stack, with multi-tensor ops around
    it (a handful of launches per step, not several per matrix: on eight GPUs each rank's step is short and
    the host's launches count). With several ranks, rank r handles the matrices whose index within their shape
    group is r mod world_size, and one all-reduce of a flat bf16 buffer shares every update (gradients must
    already be averaged).
    """

    def __init__(self, params, lr, momentum, backend_steps, ctx, compile_ns=False, h=None, adam=None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "backend_steps": backend_steps})
        self.rank, self.world_size, self.distributed = ctx.rank, ctx.world_size, ctx.distributed
        self.h, self.adam = h, adam  # for the transforms' setup: their knobs, the Adam optimizer built beside it
        self._scales = {}  # shapes of a stack's matrices -> their max(1, rows/cols)^0.5, (n, 1, 1) fp32
        self.transforms = list(MUON_TRANSFORMS)  # muon_transform slot: stages of the update, in order
        for t in self._stage("setup"):
            t(self)
        # golfc build refuses two plugins declaring one exclusive stage (Impl.exclusive, the authoritative check); this
        # catches what it cannot see: a run-time object defining the stage undeclared (else the first wins silently)
        for stage in ("orthogonalise", "exchange"):
            if len(self._stage(stage)) > 1:
                owners = [type(t).__name__ for t in self.transforms if hasattr(t, stage)]
                raise RunInputError(f"Muon transforms {' and '.join(owners)} both define {stage}(), which one may; "
                                    f"expected each plugin defining it to declare Impl(exclusive=({stage!r},))")
        orthogonalise = (self._stage("orthogonalise") or [muon_newton_schulz])[0]  # a transform's own, else NS5
        self.newton_schulz = torch.compile(orthogonalise) if compile_ns else orthogonalise
        self.exchange = (self._stage("exchange") or [self._all_reduce_updates])[0]

    def _stage(self, name):
        """The transforms' methods for one stage (setup, before_update, before_orthogonalise, orthogonalise,
        after_orthogonalise)."""
        return [getattr(t, name) for t in self.transforms if hasattr(t, name)]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            for t in self._stage("before_update"):
                t(params, group, self)  # e.g. decoupled weight decay, on every matrix of the group
            stacks = self._my_stacks(params)
            updates = self._orthogonalised_updates(group, params, stacks)  # index -> bf16 update
            mine = list(updates)
            if self.distributed:
                self.exchange(params, updates, group, self)  # every rank applies every rank's updates
            elif mine:
                torch._foreach_add_([params[i] for i in mine], [updates[i] for i in mine], alpha=-group["lr"])

    @staticmethod
    def _all_reduce_updates(params, updates, group, opt):
        """The default exchange: one all-reduce of a flat bf16 buffer where each rank filled its own slices."""
        mine = list(updates)
        flat = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=torch.bfloat16)
        views = [v.view_as(p) for v, p in zip(flat.split([p.numel() for p in params]), params)]
        if mine:
            torch._foreach_copy_([views[i] for i in mine], [updates[i] for i in mine])
        dist.all_reduce(flat)  # each slice is nonzero on exactly one rank
        torch._foreach_add_(params, views, alpha=-group["lr"])  # bf16 update, added in fp32

    def _my_stacks(self, params):
        """This rank's share of every shape group (same (min dim, max dim), in parameter order) as lists of
        parameter indices; a matrix without a gradient is left out."""
        shape_groups = {}
        for i, p in enumerate(params):
            shape_groups.setdefault((min(p.shape), max(p.shape)), []).append(i)
        stacks = []
        for members in shape_groups.values():
            mine = [i for j, i in enumerate(members) if j % self.world_size == self.rank and params[i].grad is not None]
            if mine:
                stacks.append(mine)
        return stacks

    def _orthogonalised_updates(self, group, params, stacks):
        """{index: bf16 update} for this rank's matrices: Nesterov momentum, then one Newton-Schulz call per stack."""
        mine = [i for stack in stacks for i in stack]
        if not mine:
            return {}
        m = group["momentum"]
        grads = [params[i].grad for i in mine]
        bufs = []
        for i in mine:
            state = self.state[params[i]]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(params[i].grad)
            bufs.append(state["momentum_buffer"])
        torch._foreach_mul_(bufs, m)
        torch._foreach_add_(bufs, grads)  # buf = m*buf + g
        nesterov = dict(zip(mine, torch._foreach_add(grads, bufs, alpha=m)))  # g' = g + m*buf
        updates = {}
        for stack in stacks:
            transposed = [params[i].size(0) > params[i].size(1) for i in stack]  # work on the wide orientation
            G = torch.stack([nesterov[i].mT if t else nesterov[i] for i, t in zip(stack, transposed)])  # (n, r, c)
            for t in self._stage("before_orthogonalise"):
                G = t(G, [params[i] for i in stack], transposed, group, self)
            X = self.newton_schulz(G, group["backend_steps"])  # (n, r, c) bf16: NS5 or a transform's orthogonalise
            for t in self._stage("after_orthogonalise"):
                X = t(X, [params[i] for i in stack], transposed, group, self)
            X = (X * self._scale(params, stack)).bfloat16()  # the product in fp32, rounded once, as x * a float
            updates.update((i, x.mT if t else x) for i, x, t in zip(stack, X.unbind(0), transposed))
        return updates

    def _scale(self, params, stack):
        """max(1, rows/cols)^0.5 of each matrix of a stack, (n, 1, 1) fp32 on its device (made once per layout)."""
        key = tuple(params[i].shape for i in stack)
        if key not in self._scales:
            scales = [max(1.0, params[i].size(0) / params[i].size(1)) ** 0.5 for i in stack]
            self._scales[key] = torch.tensor(scales, device=params[stack[0]].device).view(-1, 1, 1)
        return self._scales[key]


def build_muon_adam_optimizers(model, h, ctx):
    """[Adam (embedding, head, everything else), Muon (CastedLinear matrices except the head)]."""
    head = getattr(model, "lm_head", None)
    head_params = [head.weight] if head is not None else []
    embed_params = [model.tok_emb.weight]
    claimed = {id(p) for p in embed_params + head_params}
    matrix_params = []
    for m in model.modules():  # a "group" tag (tag_param) overrides the rule: CastedLinear matrices go to Muon
        if isinstance(m, CastedLinear) and m is not head and id(m.weight) not in claimed:
            if param_tag(None, "group", m.weight) in (None, "muon"):
                matrix_params.append(m.weight)
                claimed.add(id(m.weight))
    for p in model.parameters():
        if param_tag(None, "group", p) == "muon" and id(p) not in claimed and p.ndim == 2:
            matrix_params.append(p)
            claimed.add(id(p))
    scalar_params = [p for p in model.parameters() if id(p) not in claimed]  # vectors, control tensors, skips

    embed_lr = h.tied_embed_lr if head is None else h.embed_lr
    adam_groups = [{"params": embed_params, "lr": embed_lr, "base_lr": embed_lr, "name": "embed"}]
    if head_params:
        adam_groups.append({"params": head_params, "lr": h.head_lr, "base_lr": h.head_lr, "name": "head"})
    if scalar_params:
        adam_groups.append({"params": scalar_params, "lr": h.scalar_lr, "base_lr": h.scalar_lr, "name": "scalar"})
    adam = torch.optim.Adam(
        adam_groups, betas=(h.beta1, h.beta2), eps=h.adam_eps, weight_decay=0.0, fused=ctx.device.type == "cuda"
    )
    muon = Muon(matrix_params, lr=h.matrix_lr, momentum=h.muon_momentum, backend_steps=h.muon_backend_steps,
                ctx=ctx, compile_ns=compile_enabled(h, ctx.device), h=h, adam=adam)
    for g in muon.param_groups:
        g["base_lr"] = h.matrix_lr
        g["base_momentum"] = h.muon_momentum  # the schedule warms momentum up towards this
    log0(f"tie_embeddings:{head is None} embed_lr:{embed_lr} head_lr:{h.head_lr if head_params else 0.0} "
         f"matrix_lr:{h.matrix_lr} scalar_lr:{h.scalar_lr}")
    return [adam, muon]
