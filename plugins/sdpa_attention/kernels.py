# ==================================================================================================
# plugins/sdpa_attention/kernels: the attention pieces the masked attention kernels share (window, varlen) and the
# flash-attn import (window, flash_attn). Inlined only into programs whose kernel requires it, never the baseline.
# A mask rule is a FlexAttention mask_mod, rule(b, h, q_idx, kv_idx) -> bool (True: query q_idx sees key kv_idx);
# each kernel plugin writes its rule once and gets from here, for the same rule:
#   masked SDPA:   rule_dense_mask (the explicit boolean mask) and masked_sdpa_attention (exact everywhere, computes
#                  the masked blocks too; the CPU path: FlexAttention has no backward there)
#   FlexAttention: rule_block_mask (its block mask, 128 x 128 blocks, masked-out blocks skipped), static_block_mask
#                  (the same for a rule of the positions only, registered in MASK_RULE_FACTORIES, built once per
#                  shape and cached) and masked_flex_attention
# ==================================================================================================
import importlib
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention


def rule_dense_mask(rule, T, device, rows=None):
    """The rule's boolean mask over T queries and T keys: (T, T) for a rule that ignores the row (rows=None),
    else (rows, 1, T, T), row b's mask from rule(b, ...) (broadcast over heads)."""
    q_idx = torch.arange(T, device=device)[:, None]
    kv_idx = torch.arange(T, device=device)[None, :]
    if rows is None:
        return rule(0, 0, q_idx, kv_idx)
    b = torch.arange(rows, device=device)[:, None, None]
    return rule(b, 0, q_idx, kv_idx)[:, None]


def masked_sdpa_attention(q, k, v, mask):
    """q (B, H, T, D), k and v (B, Hkv, T, D), mask bool (T, T) or (B, 1, T, T) -> y (B, H, T, D), scale 1/sqrt(D)."""
    if q.size(1) != k.size(1):  # GQA: the masked kernels do not all take enable_gqa
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def rule_block_mask(rule, T, device, rows=None):
    """FlexAttention's BlockMask of the rule over T queries and keys (rows=None: one mask for every row)."""
    return create_block_mask(rule, rows, None, T, T, device=device)


MASK_RULE_FACTORIES = {}  # name -> factory(arg) -> rule, registered by the kernel plugin when its section runs
MASK_RULES = {}  # (name, arg) -> its rule: one function object per rule, so compiled graphs reuse it
STATIC_BLOCK_MASKS = {}  # (name, arg, T, device) -> the BlockMask's tensors, built once


@torch.compiler.assume_constant_result
def static_block_tensors(name, arg, T, device):
    """The block-sparse structure of rule (name, arg) over (T, T) (which blocks are skipped, full or partial), built
    eagerly the first time a shape is seen and cached. Under torch.compile the result is a constant of the graph
    (assume_constant_result): the mask is never rebuilt per forward."""
    key = (name, arg, T, device)
    if key not in STATIC_BLOCK_MASKS:
        rule = MASK_RULES.setdefault((name, arg), MASK_RULE_FACTORIES[name](arg))
        bm = rule_block_mask(rule, T, device)
        STATIC_BLOCK_MASKS[key] = (bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks, bm.full_kv_indices,
                                   bm.q_num_blocks, bm.q_indices, bm.full_q_num_blocks, bm.full_q_indices)
    return STATIC_BLOCK_MASKS[key]


def static_block_mask(name, arg, T, device):
    """The cached BlockMask of the rule MASK_RULE_FACTORIES[name](arg) for sequences of T tokens: for a rule of the
    positions only, the same for every row and every forward (wrapping cached tensors: no compute)."""
    tensors = static_block_tensors(name, arg, T, str(device))  # first: it registers the rule, eagerly
    rule = MASK_RULES.setdefault((name, arg), MASK_RULE_FACTORIES[name](arg))
    return BlockMask((T, T), *tensors, BLOCK_SIZE=(128, 128), mask_mod=rule)


def masked_flex_attention(q, k, v, block_mask):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D) through FlexAttention; GQA without expanding k/v."""
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=q.size(1) != k.size(1))


# flash-attn's flash_attn_func takes (B, T, H, D) and window_size: FlashAttention-3 (flash_attn_interface, Hopper)
# or FlashAttention-4 (flash_attn.cute). Its kernels take bf16/fp16 on CUDA only.
FLASH_ATTN_MODULES = {"fa3": "flash_attn_interface", "fa4": "flash_attn.cute"}  # FLASH_ATTN_IMPL -> module


def flash_attn_candidates(choice="auto"):
    """The modules a choice allows, in the order they are tried (auto: FA3, then FA4)."""
    return list(FLASH_ATTN_MODULES.values()) if choice == "auto" else [FLASH_ATTN_MODULES[choice]]


def flash_attn_import(choice="auto"):
    """(module name, its flash_attn_func) for the first candidate that imports and has one; (None, None) if none."""
    for name in flash_attn_candidates(choice):
        try:
            func = getattr(importlib.import_module(name), "flash_attn_func", None)
        except (ImportError, OSError, RuntimeError):  # absent, or built for another CUDA / torch
            continue
        if func is not None:
            return name, func
    return None, None


def flash_attn_required(choice, asked_by, otherwise):
    """(module name, flash_attn_func) as flash_attn_import gives them, where the user asked for flash-attn
    (`asked_by`: the plugin and its knob); when none imports: one line on stderr naming what was tried and what to
    do instead, exit code 2, at start-up before any data or model."""
    name, func = flash_attn_import(choice)
    if func is None:
        tried = " or ".join(flash_attn_candidates(choice))
        print(f"error: {asked_by}: cannot import {tried}; expected FlashAttention-3 or -4 installed, or {otherwise}",
              file=sys.stderr)
        sys.exit(2)
    return name, func


def flash_attn_call(func, q, k, v, **kwargs):
    """flash-attn on the core's layout: q (B, H, T, D), k and v (B, Hkv, T, D) are transposed views of (B, T, H, D)
    memory, so handing it .transpose(1, 2) copies nothing; its (B, T, H, D) output read back as (B, H, T, D) is in
    q's memory order, as SDPA returns it. GQA native. Some versions also return the log-sum-exp: dropped."""
    out = func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **kwargs)
    out = out[0] if isinstance(out, tuple) else out
    return out.transpose(1, 2)
