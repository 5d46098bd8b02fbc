# ==================================================================================================
# plugins/partial_rope: no run-time code of its own. The partial rotation lives in rope's Rotary
# (plugins/rope/runtime.py: Rotary.rotate, rope_dims_of), the base of every rope form (rope, ntk_rope, yarn_rope),
# so that ROPE_DIMS composes with NTK and YaRN; this plugin declares ROPE_DIMS, which turns it on, and refuses a
# position encoding that would ignore it (__init__.py). This file is therefore never inlined.
# ==================================================================================================
