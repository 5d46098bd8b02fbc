# ==================================================================================================
# plugins/warmdown_frac: constant LR, then a linear warmdown over the last WARMDOWN_FRAC of the run
# (of the wall-clock cap, or of ITERATIONS without one), floored at MIN_LR (WARMDOWN_FRAC: 04-01 record
# onward; MIN_LR: 04-23 onward); linear Muon momentum warmup as in the baseline
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def run_fraction(step, elapsed_ms, h):
    """How far the run is, in [0, 1]: the training wall clock over the cap (less the export's reserve,
    GPTQ_RESERVE_SECONDS, where the core declares it), or the step over ITERATIONS without a cap. The clock is
    the one every rank agrees on (the slowest rank's), so every rank gets the same fraction."""
    if h.max_wallclock_seconds > 0:
        budget_ms = 1000.0 * (h.max_wallclock_seconds - getattr(h, "gptq_reserve_seconds", 0.0))
        return min(elapsed_ms / max(budget_ms, 1e-9), 1.0)
    return min(step / max(h.iterations, 1), 1.0)


def fraction_lr_multiplier(step, elapsed_ms, h):
    """1 until 1 - WARMDOWN_FRAC of the run, then max((1 - frac) / WARMDOWN_FRAC, MIN_LR)."""
    frac = run_fraction(step, elapsed_ms, h)
    if h.warmdown_frac <= 0 or frac < 1.0 - h.warmdown_frac:
        return 1.0
    return max((1.0 - frac) / h.warmdown_frac, h.min_lr)


def apply_fraction_schedule(optimizers, step, elapsed_ms, h):
    """lr = base_lr * multiplier for every group; groups with base_momentum (Muon's) warm their momentum up
    linearly from MUON_MOMENTUM_WARMUP_START over MUON_MOMENTUM_WARMUP_STEPS (the baseline's warmup)."""
    mul = fraction_lr_multiplier(step, elapsed_ms, h)
    steps = h.muon_momentum_warmup_steps
    ramp = min(step / steps, 1.0) if steps > 0 else 1.0
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * mul
            if "base_momentum" in group:
                group["momentum"] = (1 - ramp) * h.muon_momentum_warmup_start + ramp * group["base_momentum"]
    return mul
