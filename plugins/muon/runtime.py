# ==================================================================================================
# plugins/muon: Muon for the block matrices, Adam for embeddings, head and control tensors
# Muon: K. Jordan, modded-nanogpt (Nesterov momentum, then Newton-Schulz orthogonalisation)
# ==================================================================================================
from golfc.runtime.model import CastedLinear
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

    Matrices are grouped by (transposed) shape and orthogonalised as one stack. With several ranks,
    rank r handles the matrices whose index within their shape group is r mod world_size, and one
    all-reduce of a flat bf16 buffer shares every update (gradients must already be averaged).
    """

    def __init__(self, params, lr, momentum, backend_steps, ctx, compile_ns=False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "backend_steps": backend_steps})
        self.rank, self.world_size, self.distributed = ctx.rank, ctx.world_size, ctx.distributed
        self.newton_schulz = torch.compile(muon_newton_schulz) if compile_ns else muon_newton_schulz

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            offsets, total = [], 0
            for p in params:
                offsets.append(total)
                total += p.numel()
            flat = torch.zeros(total, device=params[0].device, dtype=torch.bfloat16)
            shape_groups = {}  # (min dim, max dim) -> parameter indices, in parameter order
            for i, p in enumerate(params):
                shape_groups.setdefault((min(p.shape), max(p.shape)), []).append(i)
            for members in shape_groups.values():
                mine = [i for j, i in enumerate(members) if j % self.world_size == self.rank]
                mine = [i for i in mine if params[i].grad is not None]
                if mine:
                    self._orthogonalised_updates(group, [params[i] for i in mine], [offsets[i] for i in mine], flat)
            if self.distributed:
                dist.all_reduce(flat)  # each slice is nonzero on exactly one rank
            updates = [flat[o : o + p.numel()].view_as(p).to(p.dtype) for o, p in zip(offsets, params)]
            torch._foreach_add_(params, updates, alpha=-group["lr"])

    def _orthogonalised_updates(self, group, params, offsets, flat):
        m = group["momentum"]
        grads = [p.grad for p in params]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
            bufs.append(state["momentum_buffer"])
        torch._foreach_mul_(bufs, m)
        torch._foreach_add_(bufs, grads)  # buf = m*buf + g
        nesterov = torch._foreach_add(grads, bufs, alpha=m)  # g' = g + m*buf
        transposed = [g.size(0) > g.size(1) for g in nesterov]  # work on the wide orientation
        X = self.newton_schulz(torch.stack([g.mT if t else g for g, t in zip(nesterov, transposed)]),
                               group["backend_steps"])  # (n, r, c)
        for x, p, o, t in zip(X, params, offsets, transposed):
            x = x.mT if t else x
            scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
            flat[o : o + p.numel()] = (x * scale).reshape(-1)


def build_muon_adam_optimizers(model, h, ctx):
    """[Adam (embedding, head, everything else), Muon (CastedLinear matrices except the head)]."""
    head = getattr(model, "lm_head", None)
    head_params = [head.weight] if head is not None else []
    embed_params = [model.tok_emb.weight]
    claimed = {id(p) for p in embed_params + head_params}
    matrix_params = []
    for m in model.modules():
        if isinstance(m, CastedLinear) and m is not head and id(m.weight) not in claimed:
            matrix_params.append(m.weight)
            claimed.add(id(m.weight))
    scalar_params = [p for p in model.parameters() if id(p) not in claimed]  # vectors, control tensors, skips

    embed_lr = h.tied_embed_lr if head is None else h.embed_lr
    adam_groups = [{"params": embed_params, "lr": embed_lr, "base_lr": embed_lr}]
    if head_params:
        adam_groups.append({"params": head_params, "lr": h.head_lr, "base_lr": h.head_lr})
    if scalar_params:
        adam_groups.append({"params": scalar_params, "lr": h.scalar_lr, "base_lr": h.scalar_lr})
    adam = torch.optim.Adam(
        adam_groups, betas=(h.beta1, h.beta2), eps=h.adam_eps, weight_decay=0.0, fused=ctx.device.type == "cuda"
    )
    muon = Muon(matrix_params, lr=h.matrix_lr, momentum=h.muon_momentum, backend_steps=h.muon_backend_steps,
                ctx=ctx, compile_ns=compile_enabled(h, ctx.device))
    for g in muon.param_groups:
        g["base_lr"] = h.matrix_lr
        g["base_momentum"] = h.muon_momentum  # the schedule warms momentum up towards this
    log0(f"tie_embeddings:{head is None} embed_lr:{embed_lr} head_lr:{h.head_lr if head_params else 0.0} "
         f"matrix_lr:{h.matrix_lr} scalar_lr:{h.scalar_lr}")
    return [adam, muon]
