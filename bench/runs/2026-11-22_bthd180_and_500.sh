#!/usr/bin/env bash
# Device call 14 (one H100): the build with attention in (B, T, H, D) memory order (call 13) at the issue's
# 180 s setting, then the equal-steps run (ITERATIONS=500, no cap) whose score call 5 measured at 1.4097.
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_bthd180_h100 timeout 300 python3 train_gpt.py > "$OUT/golfc_bthd180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|peak memory|Serialized model int8|Code size|final_)" "$OUT/golfc_bthd180_h100.log"
ITERATIONS=500 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=0 TRAIN_LOG_EVERY=100 RUN_ID=golfc_bthd500_h100 \
  timeout 270 python3 train_gpt.py > "$OUT/golfc_bthd500_h100.log" 2>&1
grep -E "^(step:500/500 train_loss|step:.*val_bpb|Serialized model int8|final_)" "$OUT/golfc_bthd500_h100.log"
