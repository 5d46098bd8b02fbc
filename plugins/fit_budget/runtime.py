# ==================================================================================================
# plugins/fit_budget: the budget fitter with a declared strategy. Try, in order: +-1 pruning alone
# (plugins/prune_pm1); then the FIT_BUDGET_LOWER classes lowered by one bit each, cumulatively (mlp, then mlp
# and attn, ...), each time without pruning and then with it. The first candidate that fits is kept; every
# attempt is logged. Lowering requantizes the stored values: s' = fp16(s qmax / qmax'), q' = round(q s / s').
# ==================================================================================================


def fit_budget_lower(obj, cls):
    """A copy of a low-bit object whose `cls` tensors have one bit fewer (requantized from their stored values)."""
    out = {**obj, "q": dict(obj["q"]), "scale": dict(obj["scale"]), "bits": dict(obj["bits"])}
    for name, bits in obj["bits"].items():
        if lowbit_class(name) != cls or bits <= 2:
            continue
        qmax, qmax2 = lowbit_qmax(bits), lowbit_qmax(bits - 1)
        s = obj["scale"][name].float()
        s2 = (s * qmax / qmax2).to(torch.float16)
        w = obj["q"][name].float() * s[:, None]
        out["q"][name] = lowbit_round(w, s2, qmax2)
        out["scale"][name], out["bits"][name] = s2, bits - 1
    return out


def fit_budget(obj, total_bytes, h):
    """The first candidate of the declared strategy that fits ARTIFACT_BUDGET_BYTES, else the last one tried."""
    budget = ARTIFACT_BUDGET_BYTES
    candidate = prune_pm1_fit(obj, total_bytes, h)
    if total_bytes(candidate) <= budget:
        log0("fit_budget: +-1 pruning alone fits")
        return candidate
    classes = [c.strip() for c in h.fit_budget_lower.split(",") if c.strip()]
    if "q" not in obj:
        log0(f"fit_budget: the {obj.get('__quant_format__')} format has no bits to lower; pruned only")
        return candidate
    lowered = obj
    for cls in classes:
        lowered = fit_budget_lower(lowered, cls)
        size = total_bytes(lowered)
        log0(f"fit_budget: {cls} one bit lower: {size} bytes")
        if size <= budget:
            return lowered
        candidate = prune_pm1_fit(lowered, total_bytes, h)
        if total_bytes(candidate) <= budget:
            log0(f"fit_budget: {cls} one bit lower and +-1 pruning fit")
            return candidate
    log0(f"fit_budget: nothing in the strategy fits {budget} bytes")
    return candidate
