# ==================================================================================================
# plugins/sdpa_attention/masks: the masked attention the window and varlen kernels share (one implementation).
# Inlined only into programs whose kernel requires it (Impl.requires), never into the baseline.
# A mask rule is a FlexAttention mask_mod, rule(b, h, q_idx, kv_idx) -> bool (True: query q_idx sees key kv_idx);
# each kernel plugin writes its rule once and gets from here, for the same rule:
#   masked SDPA:   rule_dense_mask (the explicit boolean mask) and masked_sdpa_attention (exact everywhere, computes
#                  the masked blocks too; the CPU path: FlexAttention has no backward there)
#   FlexAttention: rule_block_mask (its block mask, 128 x 128 blocks, masked-out blocks skipped; a kernel may cache
#                  it: window per shape, varlen per forward) and masked_flex_attention
# ==================================================================================================
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


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


def masked_flex_attention(q, k, v, block_mask):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> y (B, H, T, D) through FlexAttention; GQA without expanding k/v."""
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=q.size(1) != k.size(1))
