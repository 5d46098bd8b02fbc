"""golfc.testing's parity helpers of tests/gpu (which skip without CUDA), checked here on the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from golfc.testing import attention_leaves, cpu_context, forward_backward, load_program, recorded_ops, relative_error


def test_the_gpu_parity_helpers_on_the_cpu():
    """golfc.testing's helpers of tests/gpu, checked where they can be (CPU): the leaves are (B, H, T, D) views of
    (B, T, H, D) memory, forward_backward gives fp32 outputs and gradients, recorded_ops sees the ops a block runs."""
    q, k, v = attention_leaves(32, device="cpu")
    assert q.shape == (4, 8, 32, 64) and k.shape == v.shape == (4, 4, 32, 64) and q.dtype == torch.bfloat16
    assert q.transpose(1, 2).is_contiguous() and q.requires_grad
    with recorded_ops() as ops:
        y, dq, dk, dv = forward_backward(
            lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True, enable_gqa=True), [q, k, v])
    assert any("scaled_dot_product" in name or "_efficient_attention" in name or "math" in name for name in ops), ops
    assert all(t.dtype == torch.float32 for t in (y, dq, dk, dv)) and dk.shape == k.shape
    assert q.grad is None  # the leaves themselves are left alone
    assert relative_error(y, y) == 0.0 and abs(relative_error(2 * y, y) - 1.0) < 1e-6


def test_a_run_context_on_another_device_carries_its_tables_there():
    ctx = cpu_context(load_program(env={"DEVICE": "cpu"}), vocab=16, device="meta")
    assert ctx.device == torch.device("meta") and all(t.device.type == "meta" and t.shape == (16,) for t in ctx.luts)
