# ==================================================================================================
# plugins/lqer: a quant stage that, after every matrix is quantized, corrects the LQER_TOP_K matrices with the
# largest error E = W - Q s (Frobenius norm) by a rank-r SVD: E ~ A B with A = U_r S_r (rows, r) and
# B = V_r^T (r, cols). Asymmetric packing (PR #1851): A in int2 [-2, 1] with one fp16 scale max|A| / 1.5; B
# flattened in groups of LQER_GROUP, int4 [-8, 7], one fp16 scale max|g| / 7.5 per group. The engine's
# dequantizer adds A_q a_s @ B_q b_s back (obj["lowrank"]).
# ==================================================================================================


def lqer_pack(E, rank, group):
    """E (rows, cols) fp32 -> the engine's low-rank entry for its rank-`rank` SVD approximation."""
    U, S, Vh = torch.linalg.svd(E, full_matrices=False)
    r = min(rank, S.numel())
    A, B = U[:, :r] * S[:r], Vh[:r]
    a_scale = (A.abs().max() / 1.5).clamp_min(1e-8).to(torch.float16)
    a = torch.clamp(torch.round(A / a_scale.float()), -2, 1).to(torch.int8)
    flat = B.reshape(-1)
    flat = torch.cat([flat, flat.new_zeros((-flat.numel()) % group)]).view(-1, group)
    b_scale = (flat.abs().amax(dim=1) / 7.5).clamp_min(1e-8).to(torch.float16)
    b = torch.clamp(torch.round(flat / b_scale.float()[:, None]), -8, 7).to(torch.int8).reshape(-1)
    return {"a": a.contiguous(), "a_scale": a_scale, "b": b.contiguous(), "b_scale": b_scale, "b_shape": (r, B.size(1))}


class LqerStage:
    def finish(self, obj, state, h):
        """Add a correction to the LQER_TOP_K quantized matrices with the largest ||W - Q s||_F."""
        errors = []
        for name in obj["q"]:
            w = state[name].detach().to("cpu").float().reshape(obj["q"][name].shape)
            errors.append((float((w - lowbit_dequantize_matrix(obj, name)).norm()), name))
        for _, name in sorted(errors, reverse=True)[: h.lqer_top_k]:
            w = state[name].detach().to("cpu").float().reshape(obj["q"][name].shape)
            E = w - lowbit_dequantize_matrix(obj, name)
            obj["lowrank"][name] = lqer_pack(E, h.lqer_rank, h.lqer_group)
            after = float((w - lowbit_dequantize_matrix(obj, name)).norm())
            log0(f"lqer: {name} rank {obj['lowrank'][name]['b_shape'][0]} error {float(E.norm()):.4f} -> {after:.4f}")


LQER_STAGE = LqerStage()
