#!/usr/bin/env bash
# Device call 13 (one H100): q, k and v kept in the matmuls' (B, T, H, D) memory order (attn_bthd, profiled,
# to see whether the transpose copies around attention go), against the default, in one process; then
# inductor's pointwise/reduction autotuning (max_autotune_pointwise), last because its compile time is unknown.
# Ran at commit e9c98fa, before the runtime adopted that memory order; with the current runtime the same
# comparison is `--variants base,attn_bhtd,base,attn_bhtd` (attn_bhtd = the old order).
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 570 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" \
  --variants attn_bthd,base,attn_bthd,base,autotune_pointwise --json "$OUT/call13_layout.json" 2>&1 \
  | tee "$OUT/call13_layout.log"
