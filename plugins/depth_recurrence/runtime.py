# ==================================================================================================
# plugins/depth_recurrence: looped layers (PR #1204, #1394, #1493). Once the run phase "recurrence" is on (at
# ENABLE_LOOPING_AT of the run), the blocks run in the schedule
#   [0 .. S-1] + [S .. E] * (NUM_LOOPS + 1) + [E+1 .. L-1]          (S = LOOP_START, E = LOOP_END)
# e.g. 11 layers, S=3, E=5, 2 loops: 0 1 2 3 4 5 3 4 | 5 3 4 5 6 7 8 9 10 (17 virtual layers; the U-Net skips split
# it in half). The compile warmup compiles both graphs (core/train), so the switch compiles nothing in the loop.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

LOOP_PHASE = "recurrence"


def loop_schedule(h):
    """The schedule once looping is on: LOOP_SCHEDULE when given, else the looped span repeated; one line (exit 2)
    for a span or an index that is not a layer."""
    L = h.num_layers
    if h.loop_schedule:
        bad = [i for i in h.loop_schedule if not 0 <= i < L]
        if bad:
            raise RunInputError(f"LOOP_SCHEDULE={','.join(map(str, h.loop_schedule))}: {bad} not a layer of "
                                f"NUM_LAYERS={L}; expected indices 0..{L - 1}")
        return tuple(h.loop_schedule)
    S, E = h.loop_start, h.loop_end
    if not 0 <= S <= E < L:
        raise RunInputError(f"LOOP_START={S} LOOP_END={E}: expected 0 <= LOOP_START <= LOOP_END < NUM_LAYERS={L}")
    return tuple(range(S)) + tuple(range(S, E + 1)) * (h.num_loops + 1) + tuple(range(E + 1, L))


def recurrent_layer_schedule(h, phases):
    """The layer_schedule slot: every layer once, in order, until the "recurrence" phase is on; the loop after."""
    return loop_schedule(h) if LOOP_PHASE in phases else tuple(range(h.num_layers))


class DepthRecurrenceEvents(RunEvents):
    """Declares the phase "recurrence" at ENABLE_LOOPING_AT (none when NUM_LOOPS=0 and no LOOP_SCHEDULE); the core
    switches it on at that fraction of the run on every rank at the same step, and the forwards read it from
    fctx.phases. A class attribute, so that skip mixers can size their weights by the looped schedule."""

    phases = ({LOOP_PHASE: Hyperparameters.enable_looping_at}
              if Hyperparameters.num_loops > 0 or Hyperparameters.loop_schedule else {})

    def __init__(self, model, h, ctx):
        super().__init__(model, h, ctx)
        if self.phases:
            log0(f"depth_recurrence: at {h.enable_looping_at:g} of the run, layers {list(loop_schedule(h))}")

    def phase(self, model, name, on):
        if name == LOOP_PHASE and on:
            schedule = loop_schedule(self.h)
            half = len(schedule) // 2
            log0(f"layer_loop:enabled encoder:{list(schedule[:half])} decoder:{list(schedule[half:])}")
