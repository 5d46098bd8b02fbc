#!/usr/bin/env bash
# Device call 5 (one H100): the build with the reference's two quirks as defaults (bf16 RoPE tables,
# int8 row scales floored at 1/127): equal-steps run, then the issue's 180 s setting.
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
ITERATIONS=500 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=0 TRAIN_LOG_EVERY=100 RUN_ID=golfc_ref500_h100 \
  timeout 260 python3 train_gpt.py > "$OUT/golfc_ref500_h100.log" 2>&1
grep -E "^(step:500/500 train_loss|step:.*val_bpb|Serialized model int8|final_)" "$OUT/golfc_ref500_h100.log"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_ref180_h100 timeout 320 python3 train_gpt.py > "$OUT/golfc_ref180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|peak memory|Serialized model int8|Code size|final_)" "$OUT/golfc_ref180_h100.log"
