# ==================================================================================================
# plugins/fused_mlp: the LeakyReLU^2 MLP (plugins/leaky_relu2) with its activation fused into Triton
# matmul epilogues on the GPU (the idea of PR #1072 -> 2026-04-10 VarLenAttn record, PR #1530):
#   forward:  one kernel computes pre = x W1^T and post = leaky_relu(pre, s)^2 from the same accumulator
#   backward: one kernel computes grad_post = grad_y W2 and multiplies it by d post / d pre in its epilogue
# Training forwards on CUDA only; on the CPU and in evaluation (no grad) the eager module runs.
# ==================================================================================================
import importlib.util

from golfc_plugins.leaky_relu2.runtime import LeakyReluSquaredMLP  # editors and tests only: blanked when emitted

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

FUSED_MLP_HAS_TRITON = importlib.util.find_spec("triton") is not None
FUSED_MLP_BLOCKS = {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8, "num_warps": 8, "num_stages": 3}

if FUSED_MLP_HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def fused_mlp_matmul_kernel(a_ptr, b_ptr, pre_ptr, out_ptr, M, N, K, s_am, s_ak, s_bk, s_bn, s_cm, s_cn,
                                slope, BACKWARD: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                                BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        """acc = A (M, K) @ B (K, N) in fp32 tiles, then the epilogue on the (BLOCK_M, BLOCK_N) tile:
        forward (BACKWARD=0): pre = acc, out = leaky_relu(acc, slope)^2 (both stored);
        backward (BACKWARD=1): out = acc * (2 pre if pre > 0 else 2 slope^2 pre), pre read back."""
        pid = tl.program_id(0)
        grid_m, grid_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
        group = pid // (GROUP_M * grid_n)  # grouped order: neighbouring programs reuse the same A rows in L2
        first_m = group * GROUP_M
        size_m = min(grid_m - first_m, GROUP_M)
        pid_m = first_m + (pid % (GROUP_M * grid_n)) % size_m
        pid_n = (pid % (GROUP_M * grid_n)) // size_m
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        a_ptrs = a_ptr + offs_m[:, None] * s_am + offs_k[None, :] * s_ak
        b_ptrs = b_ptr + offs_k[:, None] * s_bk + offs_n[None, :] * s_bn
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(0, tl.cdiv(K, BLOCK_K)):
            k_left = K - k * BLOCK_K
            a = tl.load(a_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
            b = tl.load(b_ptrs, mask=(offs_k[:, None] < k_left) & (offs_n[None, :] < N), other=0.0)
            acc = tl.dot(a, b, acc)
            a_ptrs += BLOCK_K * s_ak
            b_ptrs += BLOCK_K * s_bk
        c_offs = offs_m[:, None] * s_cm + offs_n[None, :] * s_cn
        c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
        if BACKWARD:
            pre = tl.load(pre_ptr + c_offs, mask=c_mask, other=0.0).to(tl.float32)
            slope_d = tl.where(pre > 0, 2.0 * pre, 2.0 * slope * slope * pre)
            tl.store(out_ptr + c_offs, (acc * slope_d).to(out_ptr.dtype.element_ty), mask=c_mask)
        else:
            tl.store(pre_ptr + c_offs, acc.to(pre_ptr.dtype.element_ty), mask=c_mask)
            act = tl.where(acc > 0, acc, slope * acc)
            tl.store(out_ptr + c_offs, (act * act).to(out_ptr.dtype.element_ty), mask=c_mask)


def fused_mlp_launch(a, b, pre, out, slope, backward, launcher=None):
    """Run the kernel on A (M, K) and B (K, N) (any strides); out (M, N), pre (M, N) written or read.
    launcher wraps the kernel (torch.library.wrap_triton inside a custom op; the raw kernel otherwise)."""
    M, K = a.shape
    N = b.shape[1]
    cfg = FUSED_MLP_BLOCKS
    grid = (triton.cdiv(M, cfg["BLOCK_M"]) * triton.cdiv(N, cfg["BLOCK_N"]),)
    kernel = fused_mlp_matmul_kernel if launcher is None else launcher(fused_mlp_matmul_kernel)
    kernel[grid](a, b, pre, out, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                 out.stride(0), out.stride(1), slope, BACKWARD=backward, **cfg)


if FUSED_MLP_HAS_TRITON and not hasattr(torch.ops.golfc, "fused_leaky_mlp"):  # once per process

    @torch.library.triton_op("golfc::fused_leaky_mlp", mutates_args=())
    def fused_leaky_mlp(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                        slope: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (M, d), w1 (hidden, d), w2 (d, hidden) -> (y (M, d), pre, post (M, hidden)): pre and post are kept
        for the backward (post is what W2's gradient needs)."""
        pre = x.new_empty((x.size(0), w1.size(0)))
        post = torch.empty_like(pre)
        fused_mlp_launch(x, w1.t(), pre, post, slope, False, torch.library.wrap_triton)
        return post @ w2.t(), pre, post

    @torch.library.triton_op("golfc::fused_leaky_mlp_grad_pre", mutates_args=())
    def fused_leaky_mlp_grad_pre(grad_y: torch.Tensor, w2: torch.Tensor, pre: torch.Tensor,
                                 slope: float) -> torch.Tensor:
        """(grad_y W2) * d post / d pre, (M, hidden), in one kernel."""
        grad_pre = torch.empty_like(pre)
        fused_mlp_launch(grad_y, w2, pre, grad_pre, slope, True, torch.library.wrap_triton)
        return grad_pre

    def fused_mlp_setup_context(ctx, inputs, output):
        x, w1, w2, slope = inputs
        _, pre, post = output
        ctx.save_for_backward(x, w1, w2, pre, post)
        ctx.slope = slope
        ctx.mark_non_differentiable(pre, post)

    def fused_mlp_backward(ctx, grad_y, grad_pre_unused, grad_post_unused):
        x, w1, w2, pre, post = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        grad_pre = torch.ops.golfc.fused_leaky_mlp_grad_pre(grad_y, w2, pre, ctx.slope)
        return grad_pre @ w1, grad_pre.t() @ x, grad_y.t() @ post, None  # x, W1, W2, slope

    torch.library.register_autograd("golfc::fused_leaky_mlp", fused_mlp_backward,
                                    setup_context=fused_mlp_setup_context)


class FusedLeakyReluSquaredMLP(LeakyReluSquaredMLP):
    """The leaky_relu2 MLP (same parameters, same state dict); training forwards on CUDA go through the fused
    kernels in the autocast dtype (bf16 in training), everything else through the eager parent."""

    def __init__(self, h, layer):
        super().__init__(h, layer)
        self.fused = h.fused_mlp_enabled and FUSED_MLP_HAS_TRITON

    def forward(self, x, fctx=None):  # (B, T, d) -> (B, T, d)
        if not (self.fused and x.is_cuda and self.training and torch.is_grad_enabled()):
            return super().forward(x, fctx)
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else x.dtype
        B, T, d = x.shape
        x2 = x.reshape(B * T, d).to(dtype)
        y, _, _ = torch.ops.golfc.fused_leaky_mlp(x2, self.fc.weight.to(dtype), self.proj.weight.to(dtype), self.slope)
        return y.view(B, T, d)
