"""A stand-in for FlashAttention-3's `flash_attn_interface` module, so that record scripts which import it run on a
machine without FA3 (the device has none). Put this folder first on PYTHONPATH.

Only what the records call: `flash_attn_func(q, k, v, causal=..., window_size=..., softmax_scale=...)` with
q (B, T, H, D) and k, v (B, T, Hkv, D) -> (B, T, H, D), and `flash_attn_varlen_func(q, k, v, cu_seqlens_q,
cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=..., window_size=...)` with packed q (N, H, D), k, v (N, Hkv, D)
-> (N, H, D), sequences given by the cumulative lengths. Both return the output only, as FA3 does.

Underneath is PyTorch's scaled_dot_product_attention: the math is FA3's, the speed is not (a record's ms/step with
this stand-in is not its FA3 ms/step). The varlen form is a custom op (opaque to torch.compile) that attends within
each sequence in turn; its backward is a second custom op that recomputes each sequence's probabilities and applies the
softmax-attention gradient formulas.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["flash_attn_func", "flash_attn_varlen_func"]


def _keep(tq: int, tk: int, causal: bool, left: int, right: int, device: torch.device) -> Tensor | None:
    """(tq, tk) bool, True = attend, with queries aligned to the end of the keys as FA3 aligns them; None when
    every query sees every key (not causal, no window)."""
    if not causal and left < 0 and right < 0:
        return None
    i = torch.arange(tq, device=device)[:, None] + (tk - tq)
    j = torch.arange(tk, device=device)[None, :]
    keep = torch.ones(tq, tk, dtype=torch.bool, device=device)
    if causal or right >= 0:
        keep &= j <= i + (0 if causal else right)
    if left >= 0:
        keep &= j >= i - left
    return keep


def _attend(q: Tensor, k: Tensor, v: Tensor, causal: bool, left: int, right: int, scale: float | None) -> Tensor:
    """q (B, H, Tq, D), k and v (B, Hkv, Tk, D) -> (B, H, Tq, D)."""
    gqa = q.size(1) != k.size(1)
    if left < 0 and right < 0 and (not causal or q.size(2) == k.size(2)):  # SDPA's own causal path, no mask
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=gqa)
    mask = _keep(q.size(2), k.size(2), causal, left, right, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=gqa)


def flash_attn_func(q: Tensor, k: Tensor, v: Tensor, softmax_scale: float | None = None, causal: bool = False,
                    window_size: tuple[int, int] = (-1, -1), **_ignored) -> Tensor:
    """q (B, T, H, D), k and v (B, T, Hkv, D) -> (B, T, H, D)."""
    out = _attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal, int(window_size[0]),
                  int(window_size[1]), softmax_scale)
    return out.transpose(1, 2)


def _varlen_eager(q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool, left: int, right: int,
                  scale: float) -> Tensor:
    out = torch.zeros_like(q)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for (a, b), (c, d) in zip(itertools.pairwise(bounds_q), itertools.pairwise(bounds_k)):
        if b > a:
            out[a:b] = _attend(q[None, a:b].transpose(1, 2), k[None, c:d].transpose(1, 2), v[None, c:d].transpose(1, 2),
                               causal, left, right, scale)[0].transpose(0, 1)
    return out


@torch.library.custom_op("flash_attn_shim::varlen_fwd", mutates_args=())
def _varlen_fwd(q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool, left: int, right: int,
                scale: float) -> Tensor:
    return _varlen_eager(q, k, v, cu_q, cu_k, causal, left, right, scale)


@_varlen_fwd.register_fake
def _(q, k, v, cu_q, cu_k, causal, left, right, scale):
    return torch.empty_like(q)


def _attend_backward(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, causal: bool, left: int, right: int,
                     scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """One sequence, written out: q (T, H, D), k and v (S, Hkv, D), grad (T, H, D) -> dq, dk, dv (at least fp32
    inside)."""
    H, Hkv = q.size(1), k.size(1)
    wide = torch.promote_types(q.dtype, torch.float32)
    qf, kf, vf, g = (t.to(wide).transpose(0, 1) for t in (q, k, v, grad))  # (heads, T or S, D)
    kf, vf = kf.repeat_interleave(H // Hkv, 0), vf.repeat_interleave(H // Hkv, 0)
    scores = qf @ kf.transpose(1, 2) * scale  # (H, T, S)
    mask = _keep(q.size(0), k.size(0), causal, left, right, q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    p = scores.softmax(-1)
    dv = p.transpose(1, 2) @ g  # (H, S, D)
    dp = g @ vf.transpose(1, 2)
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))
    dq, dk = ds @ kf * scale, ds.transpose(1, 2) @ qf * scale
    dk, dv = (t.reshape(Hkv, H // Hkv, *t.shape[1:]).sum(1) for t in (dk, dv))  # back to the key groups
    return tuple(t.transpose(0, 1).to(dtype) for t, dtype in ((dq, q.dtype), (dk, k.dtype), (dv, v.dtype)))


@torch.library.custom_op("flash_attn_shim::varlen_bwd", mutates_args=())
def _varlen_bwd(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool, left: int,
                right: int, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for (a, b), (c, d) in zip(itertools.pairwise(bounds_q), itertools.pairwise(bounds_k)):
        if b > a:
            dq[a:b], dk[c:d], dv[c:d] = _attend_backward(grad[a:b], q[a:b], k[c:d], v[c:d], causal, left, right, scale)
    return dq, dk, dv


@_varlen_bwd.register_fake
def _(grad, q, k, v, cu_q, cu_k, causal, left, right, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup(ctx, inputs, output):
    q, k, v, cu_q, cu_k, causal, left, right, scale = inputs
    ctx.save_for_backward(q, k, v, cu_q, cu_k)
    ctx.args = (causal, left, right, scale)


def _backward(ctx, grad):
    q, k, v, cu_q, cu_k = ctx.saved_tensors
    dq, dk, dv = _varlen_bwd(grad.contiguous(), q, k, v, cu_q, cu_k, *ctx.args)
    return dq, dk, dv, None, None, None, None, None, None


_varlen_fwd.register_autograd(_backward, setup_context=_setup)


def flash_attn_varlen_func(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                           max_seqlen_q: int | None = None, max_seqlen_k: int | None = None,
                           softmax_scale: float | None = None, causal: bool = False,
                           window_size: tuple[int, int] = (-1, -1), **_ignored) -> Tensor:
    """Packed q (N, H, D), k and v (N, Hkv, D); sequence s holds rows cu_seqlens[s] .. cu_seqlens[s + 1] - 1."""
    scale = softmax_scale if softmax_scale is not None else q.size(-1) ** -0.5
    return _varlen_fwd(q, k, v, cu_seqlens_q.to(torch.int64), cu_seqlens_k.to(torch.int64), bool(causal),
                       int(window_size[0]), int(window_size[1]), float(scale))
