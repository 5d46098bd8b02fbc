"""YaRN RoPE: frequencies interpolated per dimension for contexts up to YARN_MAX_LEN (the ternary record's form)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="RoPE with YaRN frequency interpolation (ramp over the rotated dims) for contexts up to YARN_MAX_LEN",
    evidence="2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon (ROPE_TYPE=yarn YARN_MAX_LEN=2048 "
    "ROPE_BASE=5000): no delta of its own claimed",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("YARN_MAX_LEN", 2048, "context the YaRN frequencies are stretched for (scale = TRAIN_SEQ_LEN / "
           "YARN_MAX_LEN); equal to TRAIN_SEQ_LEN: plain RoPE", ge=1)
    hp.require_at_least("YARN_MAX_LEN", "TRAIN_SEQ_LEN", note="YaRN stretches the training context, never shrinks it")


@hookimpl
def golfc_position_encoding() -> Impl:
    return Impl(module="golfc_plugins.yarn_rope.runtime", symbols="yarn_position_encoding",
                requires=("golfc_plugins.rope.runtime",))
