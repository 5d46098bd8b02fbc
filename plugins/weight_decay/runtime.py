# ==================================================================================================
# plugins/weight_decay: decoupled weight decay (records 03-19 onward; EMBED_WD from 04-01; the taper from
# 2026-04-18_PR1626_CaseOps_Taper, PR #1729). Smaller weights compress better: the artifact's size tracks the
# weights' RMS (04-01 README: R^2 ~ 0.99).
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def wd_run_fraction(step, clock_ms, h):
    """How far the run is: the agreed training clock over the cap less GPTQ_RESERVE_SECONDS, or the step over
    ITERATIONS without a cap (the record's training_frac)."""
    if h.max_wallclock_seconds > 0:
        return clock_ms / max(1000.0 * (h.max_wallclock_seconds - h.gptq_reserve_seconds), 1e-9)
    return step / max(h.iterations, 1)


def wd_taper_multiplier(frac, h):
    """1 until WD_TAPER_START_FRAC of the run, then linear to WD_TAPER_FINAL_MULT at its end."""
    start = h.wd_taper_start_frac
    if frac <= start or start >= 1.0:
        return 1.0
    progress = min(max((frac - start) / (1.0 - start), 0.0), 1.0)
    return 1.0 + (h.wd_taper_final_mult - 1.0) * progress


class MuonWeightDecay:
    """muon_transform: setup gives Adam's groups AdamW's decoupled decay (embedding EMBED_WD, the others
    ADAM_WD: p *= 1 - lr * wd inside Adam's step); before_update decays Muon's matrices that have a gradient,
    p *= 1 - lr * MUON_WD * taper, where lr already carries the schedule's multiplier."""

    def __init__(self):
        self.muon_wd, self.mult = 0.0, 1.0  # mult: the taper's multiplier, set by WeightDecayTaper

    def setup(self, opt):
        h = opt.h
        self.muon_wd, self.mult = h.muon_wd, 1.0
        if opt.adam is not None:
            if "decoupled_weight_decay" not in opt.adam.defaults:
                raise RunInputError(f"weight_decay: torch {torch.__version__}'s Adam has no decoupled_weight_decay "
                                    "(AdamW's decay); torch 2.7 or later is needed")
            for group in opt.adam.param_groups:
                group["weight_decay"] = h.embed_wd if group.get("name") == "embed" else h.adam_wd
                group["decoupled_weight_decay"] = True
        log0(f"weight_decay: muon:{h.muon_wd} embed:{h.embed_wd} adam:{h.adam_wd} "
             f"taper:{h.wd_taper_start_frac}->{h.wd_taper_final_mult}")

    def before_update(self, params, group, opt):
        wd = self.muon_wd * self.mult
        live = [p for p in params if p.grad is not None]
        if wd > 0 and live:
            torch._foreach_mul_(live, 1.0 - group["lr"] * wd)


MUON_WEIGHT_DECAY = MuonWeightDecay()


class WeightDecayTaper(RunEvents):
    """run_events: after timed step k, the taper multiplier for step k + 1 from the run fraction. Uncapped it is
    exactly step / ITERATIONS of the next step (the record's); under a cap the agreed clock read for step k,
    one step older than the record's (every rank reads the same, so weights stay equal across ranks)."""

    def train_start(self, run):
        MUON_WEIGHT_DECAY.mult = 1.0

    def step(self, model, step, clock_ms, lr_mul):
        MUON_WEIGHT_DECAY.mult = wd_taper_multiplier(wd_run_fraction(step, clock_ms, self.h), self.h)
