"""The one stand-in for flash-attn's `flash_attn_interface` (FlashAttention-3) and `flash_attn.cute` (FA4): the
attention they compute, on a machine without them (the device has neither; the CPU has no flash-attn at all).

Two uses, one implementation (this file; it imports torch only, so it also runs as a module of its own):
- golfc's CPU tests of code that imports flash-attn (plugins flash_attn and window): `golfc.testing`'s
  `flash_attn_stand_in_module(name)` (for `sys.modules`) and `flash_attn_stand_in(folder, name)` (this file written as
  `name` under a subprocess's `PYTHONPATH`); there `CALLS` records every call and `RETURN_LSE` returns `(out, lse)`,
  as FA4 and older FA3 builds do;
- the benches, to run the records' own scripts without FA3: `bench/flash_attn_shim/flash_attn_interface.py` runs this
  file as `flash_attn_interface` (put that folder first on PYTHONPATH); there the defaults hold: the output only, as
  current FA3 returns it, nothing recorded.

Only what the records call: `flash_attn_func(q, k, v, causal=..., window_size=..., softmax_scale=...)` with
q (B, T, H, D) and k, v (B, S, Hkv, D) -> (B, T, H, D) (contiguous, as flash-attn returns it), and
`flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=..., window_size=...)`
with packed q (N, H, D), k, v (N, Hkv, D) -> (N, H, D), sequences given by the cumulative lengths.

Underneath is PyTorch's scaled_dot_product_attention: the math is FA3's, the speed is not (a record's ms/step with
this stand-in is not its FA3 ms/step). The varlen form is a custom op (opaque to torch.compile) that attends within
each sequence in turn; its backward is a second custom op that recomputes each sequence's probabilities and applies the
softmax-attention gradient formulas. The ops are registered once per process, however many times this file is run.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CALLS", "RETURN_LSE", "flash_attn_func", "flash_attn_varlen_func"]

CALLS: list[dict] | None = None  # a list: flash_attn_func appends what it was given (golfc's tests)
RETURN_LSE = False  # True: flash_attn_func returns (out, lse (B, H, T) fp32), as FA4 and older FA3 builds do


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
                    window_size: tuple[int, int] = (-1, -1), **_ignored) -> Tensor | tuple[Tensor, Tensor]:
    """q (B, T, H, D), k and v (B, S, Hkv, D) -> (B, T, H, D), contiguous."""
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape or k.size(0) != q.size(0) or k.size(3) != q.size(3) or (
            q.size(2) % k.size(2)):
        raise ValueError(f"flash_attn_func: expected q (B, T, H, D), k and v (B, S, Hkv, D) with H % Hkv == 0; got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if CALLS is not None:  # "copied": flash-attn needs a unit stride on the last dim and copies otherwise
        CALLS.append({"q": tuple(q.shape), "k": tuple(k.shape), "causal": causal, "dtype": q.dtype,
                      "window_size": tuple(int(w) for w in window_size),
                      "copied": any(t.stride(-1) != 1 for t in (q, k, v))})
    left, right = int(window_size[0]), int(window_size[1])
    out = _attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal, left, right, softmax_scale)
    out = out.transpose(1, 2).contiguous()  # (B, T, H, D) memory, as flash-attn writes it
    if not RETURN_LSE:
        return out
    scale = softmax_scale if softmax_scale is not None else q.size(-1) ** -0.5
    kf = k.float().repeat_interleave(q.size(2) // k.size(2), dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q.float(), kf) * scale  # (B, H, T, S)
    keep = _keep(q.size(1), k.size(1), causal, left, right, q.device)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    return out, scores.logsumexp(-1)  # lse (B, H, T)


def _varlen_eager(q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool, left: int, right: int,
                  scale: float) -> Tensor:
    out = torch.zeros_like(q)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for (a, b), (c, d) in zip(itertools.pairwise(bounds_q), itertools.pairwise(bounds_k)):
        if b > a:
            out[a:b] = _attend(q[None, a:b].transpose(1, 2), k[None, c:d].transpose(1, 2), v[None, c:d].transpose(1, 2),
                               causal, left, right, scale)[0].transpose(0, 1)
    return out


def _varlen_fwd_impl(q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool, left: int,
                     right: int, scale: float) -> Tensor:
    return _varlen_eager(q, k, v, cu_q, cu_k, causal, left, right, scale)


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


def _varlen_bwd_impl(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, cu_q: Tensor, cu_k: Tensor, causal: bool,
                     left: int, right: int, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for (a, b), (c, d) in zip(itertools.pairwise(bounds_q), itertools.pairwise(bounds_k)):
        if b > a:
            dq[a:b], dk[c:d], dv[c:d] = _attend_backward(grad[a:b], q[a:b], k[c:d], v[c:d], causal, left, right, scale)
    return dq, dk, dv


def _setup(ctx, inputs, output):
    q, k, v, cu_q, cu_k, causal, left, right, scale = inputs
    ctx.save_for_backward(q, k, v, cu_q, cu_k)
    ctx.args = (causal, left, right, scale)


def _backward(ctx, grad):
    q, k, v, cu_q, cu_k = ctx.saved_tensors
    dq, dk, dv = _varlen_bwd(grad.contiguous(), q, k, v, cu_q, cu_k, *ctx.args)
    return dq, dk, dv, None, None, None, None, None, None


def _registered(name: str) -> bool:
    try:
        getattr(torch.ops.flash_attn_shim, name)
    except (AttributeError, RuntimeError):
        return False
    return True


if _registered("varlen_fwd"):  # this file already ran in this process (a test's module and the bench's, say)
    _varlen_fwd, _varlen_bwd = torch.ops.flash_attn_shim.varlen_fwd, torch.ops.flash_attn_shim.varlen_bwd
else:
    _varlen_fwd = torch.library.custom_op("flash_attn_shim::varlen_fwd", _varlen_fwd_impl, mutates_args=())
    _varlen_bwd = torch.library.custom_op("flash_attn_shim::varlen_bwd", _varlen_bwd_impl, mutates_args=())
    _varlen_fwd.register_fake(lambda q, k, v, cu_q, cu_k, causal, left, right, scale: torch.empty_like(q))
    _varlen_bwd.register_fake(lambda grad, q, k, v, cu_q, cu_k, causal, left, right, scale: (
        torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)))
    _varlen_fwd.register_autograd(_backward, setup_context=_setup)


def flash_attn_varlen_func(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                           max_seqlen_q: int | None = None, max_seqlen_k: int | None = None,
                           softmax_scale: float | None = None, causal: bool = False,
                           window_size: tuple[int, int] = (-1, -1), **_ignored) -> Tensor:
    """Packed q (N, H, D), k and v (N, Hkv, D); sequence s holds rows cu_seqlens[s] .. cu_seqlens[s + 1] - 1."""
    scale = softmax_scale if softmax_scale is not None else q.size(-1) ** -0.5
    return _varlen_fwd(q, k, v, cu_seqlens_q.to(torch.int64), cu_seqlens_k.to(torch.int64), bool(causal),
                       int(window_size[0]), int(window_size[1]), float(scale))
