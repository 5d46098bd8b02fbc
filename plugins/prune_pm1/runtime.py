# ==================================================================================================
# plugins/prune_pm1: the budget fitter that zeroes quantized values equal to +-1, cheapest first. The cost of
# zeroing one is its squared step, scale_row^2 (the squared error it adds). Binary search for the fewest
# zeroed values whose artifact (code + compressed model) fits ARTIFACT_BUDGET_BYTES (decimal: 16,000,000).
# Works on the int8 and the low-bit formats (their "quantized"/"q" and "scales"/"scale").
# ==================================================================================================


def prune_pm1_tensors(obj):
    """(values, scales) dicts of a quantizer object: the low-bit engine's q/scale or int8_quant's."""
    return (obj["q"], obj["scale"]) if "q" in obj else (obj["quantized"], obj["scales"])


def prune_pm1_candidates(obj):
    """[(name, flat indices)] of every +-1 value, and their costs, ordered cheapest first (stable)."""
    values, scales = prune_pm1_tensors(obj)
    names, index, cost = [], [], []
    for i, (name, q) in enumerate(values.items()):
        flat = q.reshape(-1)
        idx = torch.nonzero(flat.abs() == 1).reshape(-1)
        s = scales[name].float()
        row = s.expand(q.shape[0]) if s.ndim == 0 else s
        per = row.repeat_interleave(flat.numel() // q.shape[0])[idx] if idx.numel() else row[:0]
        names.append(name)
        index.append(idx)
        cost.append(torch.stack([per.square(), torch.full_like(per, i)], dim=1))
    all_cost = torch.cat(cost) if cost else torch.zeros(0, 2)
    all_index = torch.cat(index) if index else torch.zeros(0, dtype=torch.int64)
    order = torch.argsort(all_cost[:, 0], stable=True)
    return names, all_cost[order, 1].to(torch.int64), all_index[order]


def prune_pm1_apply(obj, names, owner, index, k):
    """A copy of obj whose k cheapest +-1 values are zero (only the value tensors are copied)."""
    values, _ = prune_pm1_tensors(obj)
    out = dict(obj)
    pruned = {name: q.clone() for name, q in values.items()}
    for i, name in enumerate(names):
        chosen = index[:k][owner[:k] == i]
        if chosen.numel():
            pruned[name].view(-1)[chosen] = 0
    out["q" if "q" in obj else "quantized"] = pruned
    return out


def prune_pm1_fit(obj, total_bytes, h):
    """The fewest zeroed +-1 values (binary search, PRUNE_PM1_STEPS compressions) under ARTIFACT_BUDGET_BYTES."""
    names, owner, index = prune_pm1_candidates(obj)
    budget, n = ARTIFACT_BUDGET_BYTES, index.numel()
    everything = prune_pm1_apply(obj, names, owner, index, n)
    size_all = total_bytes(everything)
    if size_all > budget:
        log0(f"prune_pm1: all {n} +-1 values zeroed: {size_all} bytes, still over {budget}")
        return everything
    lo, hi, best = 0, n, (everything, size_all)
    for _ in range(h.prune_pm1_steps):
        if hi - lo <= max(1, n // 10_000):
            break
        mid = (lo + hi) // 2
        candidate = prune_pm1_apply(obj, names, owner, index, mid)
        size = total_bytes(candidate)
        if size <= budget:
            hi, best = mid, (candidate, size)
        else:
            lo = mid
    log0(f"prune_pm1: zeroed {hi} of {n} +-1 values: {best[1]} bytes <= {budget}")
    return best[0]
