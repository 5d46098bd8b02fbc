# ==================================================================================================
# plugins/warmdown_schedule: constant LR, then a linear warmdown to zero timed by the wall clock;
# linear Muon momentum warmup
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def warmdown_lr_multiplier(step, elapsed_ms, h):
    """1, then falling linearly to 0 over the last WARMDOWN_ITERS steps.

    With a wall-clock cap the remaining steps are estimated from the mean step time so far, so the
    decay ends when the cap is reached whatever the hardware speed.
    """
    if h.warmdown_iters <= 0:
        return 1.0
    if h.max_wallclock_seconds <= 0:
        start = max(h.iterations - h.warmdown_iters, 0)
        return max((h.iterations - step) / h.warmdown_iters, 0.0) if start <= step < h.iterations else 1.0
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = h.warmdown_iters * step_ms
    remaining_ms = max(1000.0 * h.max_wallclock_seconds - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


def apply_warmdown_schedule(optimizers, step, elapsed_ms, h):
    """Set lr = base_lr * multiplier for every group, and the momentum of groups with base_momentum."""
    mul = warmdown_lr_multiplier(step, elapsed_ms, h)
    steps = h.muon_momentum_warmup_steps
    frac = min(step / steps, 1.0) if steps > 0 else 1.0
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * mul
            if "base_momentum" in group:
                group["momentum"] = (1 - frac) * h.muon_momentum_warmup_start + frac * group["base_momentum"]
    return mul
