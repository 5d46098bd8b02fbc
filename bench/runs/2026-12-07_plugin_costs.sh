#!/usr/bin/env bash
# 2026-12-07 (fifth session), one GPU (issue 15): each training-side plugin's ms/step against the baseline build,
# in one call, and the fused kernels against eager (fused_mlp against leaky_relu2, fused_ce against the baseline's
# eager loss). Equal short runs (40 steps, WARMUP_STEPS=3, seed 1337, stand-in data): what is compared is the step
# time, measured alone on the GPU, one program after the other; the bpb columns of 40 steps mean nothing.
# Programs that do not fit the call are left out of its table (design_card saves after each program).
# Usage: bash bench/runs/2026-12-07_plugin_costs.sh ["program list"]
PROGRAMS=${1:-"baseline leaky_relu2 fused_mlp fused_ce value_embed bigram_hash smear_gate parallel_residuals ema normuon polar_ns muon_eq_r int6,qat gated_attn sparse_attn_gate attn_out_gate ln_scale partial_rope unet_gated_skips weight_decay swa coprime_loader depth_recurrence varlen"}
timeout ${BUDGET:-560} bash bench/runs/2026-12-07_design_card_plugins.sh 40 15 --seq-lens "" --timeout 150 \
  --programs "$PROGRAMS"
