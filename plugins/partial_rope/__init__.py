"""Partial RoPE: only the first ROPE_DIMS dims of each head are rotated; the rest carry no position signal.

The rotation is rope's ``Rotary`` (plugins/rope/runtime.py), which every rope form derives from: with this plugin
built in, the position_encoding slot's module (rope, ntk_rope or yarn_rope, whichever fills it) reads ROPE_DIMS.
Another position encoding would ignore it, so the build refuses that combination.
"""

from __future__ import annotations

from collections.abc import Mapping

from golfc import HParams, PluginInfo, hookimpl
from golfc.errors import RecipeError

GOLFC_PLUGIN = PluginInfo(
    summary="RoPE on the first ROPE_DIMS dims of each head only (rope, ntk_rope and yarn_rope honour it)",
    evidence="2026-03-21_11L_XSA4_EMA_PartialRoPE_LateQAT_1.1248 (PR #315): -0.0023 bpb together with LN scale "
    "(1.1271 -> 1.1248); ROPE_DIMS=16 of 64 in every later record",
)

ROPE_FORMS = ("rope", "ntk_rope", "yarn_rope")  # position encodings built on rope's Rotary, which reads ROPE_DIMS


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("ROPE_DIMS", 16, "dims of each head that RoPE rotates (the first ROPE_DIMS, half-split pairs); even, "
           "at most MODEL_DIM / NUM_HEADS; 0: all", ge=0)


@hookimpl
def golfc_validate_recipe(hparams: HParams, bindings: Mapping[str, list]) -> None:
    filler = bindings["position_encoding"][0].plugin
    if filler not in ROPE_FORMS:
        raise RecipeError(f"partial_rope: ROPE_DIMS is read by {', '.join(ROPE_FORMS)}, but position_encoding is "
                          f"filled by {filler}; expected one of those")
    dims = hparams["ROPE_DIMS"].default
    head_dim = hparams["MODEL_DIM"].default // hparams["NUM_HEADS"].default
    if dims and (dims % 2 or dims > head_dim):
        raise RecipeError(f"ROPE_DIMS={dims}: expected an even number from 2 to the head dimension {head_dim} "
                          "(MODEL_DIM / NUM_HEADS), or 0 for all")
