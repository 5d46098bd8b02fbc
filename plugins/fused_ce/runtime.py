# ==================================================================================================
# plugins/fused_ce: the softcapped cross-entropy in one Triton kernel per direction (the fused softcapped-CE
# kernel of PR #1787, the 2026-04-23 record), filling the loss slot. For each row x (V,) of logits before the cap
# and its target t:
#   forward:  z = c * tanh(x / c) block by block over the vocabulary, an online log-sum-exp, loss = lse - z[t]
#   backward: dx = g * (softmax(z) - onehot(t)) * (1 - (z / c)^2), z recomputed from x, lse kept from the forward
# Neither the capped logits nor their fp32 copy nor an fp32 (N, V) gradient is written to memory (the eager path
# writes all three). CUDA training steps only; on the CPU and in every evaluation (no grad) the core's eager
# cross-entropy runs, op for op.
# ==================================================================================================
import importlib.util

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

FUSED_CE_HAS_TRITON = importlib.util.find_spec("triton") is not None
FUSED_CE_DEVICES = {"cuda"}  # device types whose training steps take the kernels (a test adds "cpu" under TRITON_INTERPRET)
FUSED_CE_MAX_BLOCK = 4096  # vocabulary columns per loop iteration of a row (sp8192: two iterations)


def fused_ce_config(vocab):
    """{BLOCK_V, num_warps} for rows of `vocab` logits: BLOCK_V the next power of two (at least 128), at most
    FUSED_CE_MAX_BLOCK; more warps for wider blocks (each thread holds BLOCK_V / (32 * num_warps) columns)."""
    if vocab < 1:
        raise RunInputError(f"fused_ce: a vocabulary of {vocab} logits, expected at least 1")
    block = min(max(1 << (vocab - 1).bit_length(), 128), FUSED_CE_MAX_BLOCK)
    return {"BLOCK_V": block, "num_warps": 4 if block <= 1024 else 8 if block <= 2048 else 16}


if FUSED_CE_HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def fused_ce_softcap(x, softcap):
        """c * tanh(x / c) in fp32 from exp(-2|u|) (no overflow for any x; CUDA and the interpreter alike). fp32
        whatever type c arrives in: under torch.compile, inductor passes a Python float as fp64."""
        u = (x / softcap).to(tl.float32)
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        return (softcap * tl.where(u < 0, -t, t)).to(tl.float32)

    @triton.jit
    def fused_ce_forward_kernel(x_ptr, t_ptr, loss_ptr, lse_ptr, stride_x, V, softcap, BLOCK_V: tl.constexpr):
        """One program per row: lse = logsumexp(softcap(x)) with a running max, loss = lse - softcap(x[t])."""
        row = tl.program_id(0).to(tl.int64)
        x_row = x_ptr + row * stride_x
        m = tl.full((), float("-inf"), tl.float32)  # running max of z
        s = tl.full((), 0.0, tl.float32)  # running sum of exp(z - m)
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            x = tl.load(x_row + cols, mask=cols < V, other=0.0).to(tl.float32)
            z = tl.where(cols < V, fused_ce_softcap(x, softcap), float("-inf"))
            m_new = tl.maximum(m, tl.max(z, axis=0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), axis=0)
            m = m_new
        lse = m + tl.log(s)
        target = tl.load(t_ptr + row)
        z_target = fused_ce_softcap(tl.load(x_row + target).to(tl.float32), softcap)
        tl.store(loss_ptr + row, lse - z_target)
        tl.store(lse_ptr + row, lse)

    @triton.jit
    def fused_ce_backward_kernel(x_ptr, t_ptr, lse_ptr, g_ptr, dx_ptr, stride_x, stride_dx, V, softcap,
                                 BLOCK_V: tl.constexpr):
        """One program per row: dx = g * (exp(z - lse) - [col == t]) * (1 - (z / c)^2), written in dx's dtype."""
        row = tl.program_id(0).to(tl.int64)
        x_row, dx_row = x_ptr + row * stride_x, dx_ptr + row * stride_dx
        target = tl.load(t_ptr + row)
        lse = tl.load(lse_ptr + row)
        g = tl.load(g_ptr + row)
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            x = tl.load(x_row + cols, mask=cols < V, other=0.0).to(tl.float32)
            z = fused_ce_softcap(x, softcap)
            p = tl.exp(z - lse)
            p = tl.where(cols == target, p - 1.0, p)
            zc = z / softcap
            dx = g * p * (1.0 - zc * zc)
            tl.store(dx_row + cols, dx.to(dx_ptr.dtype.element_ty), mask=cols < V)


def fused_ce_rows(x, targets):
    """The kernels' operands: x (N, V) with unit column stride, targets (N,) int64, both contiguous rows."""
    if x.dim() != 2 or targets.shape != (x.size(0),):
        raise RunInputError(f"fused_ce: logits {tuple(x.shape)} and targets {tuple(targets.shape)}, expected (N, V), (N,)")
    return (x if x.stride(1) == 1 else x.contiguous()), targets.contiguous().to(torch.int64)


if FUSED_CE_HAS_TRITON and not hasattr(torch.ops.golfc, "fused_softcap_ce"):  # once per process

    @torch.library.triton_op("golfc::fused_softcap_ce", mutates_args=())
    def fused_softcap_ce(x: torch.Tensor, targets: torch.Tensor, softcap: float) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, V) logits before the cap (any float dtype), targets (N,) -> (loss (N,) fp32, lse (N,) fp32)."""
        x, targets = fused_ce_rows(x, targets)
        loss = torch.empty(x.size(0), dtype=torch.float32, device=x.device)
        lse = torch.empty_like(loss)
        torch.library.wrap_triton(fused_ce_forward_kernel)[(x.size(0),)](
            x, targets, loss, lse, x.stride(0), x.size(1), softcap, **fused_ce_config(x.size(1)))
        return loss, lse

    @torch.library.triton_op("golfc::fused_softcap_ce_backward", mutates_args=())
    def fused_softcap_ce_backward(x: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, grad_loss: torch.Tensor,
                                  softcap: float) -> torch.Tensor:
        """d loss / d x (N, V) in x's dtype, for the per-row gradient grad_loss (N,)."""
        x, targets = fused_ce_rows(x, targets)
        dx = torch.empty_like(x)
        grad_loss = grad_loss.to(torch.float32).contiguous()
        torch.library.wrap_triton(fused_ce_backward_kernel)[(x.size(0),)](
            x, targets, lse, grad_loss, dx, x.stride(0), dx.stride(0), x.size(1), softcap,
            **fused_ce_config(x.size(1)))
        return dx

    def fused_ce_setup_context(ctx, inputs, output):
        x, targets, softcap = inputs
        ctx.save_for_backward(x, targets, output[1])
        ctx.softcap = softcap
        ctx.mark_non_differentiable(output[1])

    def fused_ce_backward(ctx, grad_loss, grad_lse_unused):
        x, targets, lse = ctx.saved_tensors
        return torch.ops.golfc.fused_softcap_ce_backward(x, targets, lse, grad_loss, ctx.softcap), None, None

    torch.library.register_autograd("golfc::fused_softcap_ce", fused_ce_backward, setup_context=fused_ce_setup_context)


def fused_ce_uses_kernel(hidden):
    """The kernels run on training steps (grad enabled) of a device type in FUSED_CE_DEVICES, when enabled."""
    return (Hyperparameters.fused_ce_enabled and FUSED_CE_HAS_TRITON and hidden.device.type in FUSED_CE_DEVICES
            and torch.is_grad_enabled())


def fused_softcap_loss(model, hidden, targets, reduction="mean"):
    """loss slot: hidden (B, T, d), targets (B, T) -> mean loss, or per-token NLL (B, T) fp32 ("none")."""
    if not fused_ce_uses_kernel(hidden):  # the core's own cross-entropy, op for op (bit-identical)
        logits = model.logits(hidden)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)
        return loss.view_as(targets) if reduction == "none" else loss
    z = model.head(hidden)  # (B, T, V) before the softcap, in the autocast dtype (bf16 in training)
    rows, _ = torch.ops.golfc.fused_softcap_ce(z.flatten(0, 1), targets.flatten(), float(model.logit_softcap))
    if reduction == "none":
        return rows.view_as(targets)
    return rows.sum() if reduction == "sum" else rows.mean()
