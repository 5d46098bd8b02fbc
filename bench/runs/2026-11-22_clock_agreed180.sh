#!/usr/bin/env bash
# Device call 30 (one H100): this session's build (the clock agreed across ranks changes nothing on one GPU but
# where the next step's LR reads it) at the issue's setting at its own pace (180 s cap, VAL_LOSS_EVERY=0), then
# at equal steps (ITERATIONS=500, no cap).
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_call30_180_h100 \
  timeout 290 python3 train_gpt.py > "$OUT/golfc_call30_180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|peak memory|Serialized model int8|final_)" "$OUT/golfc_call30_180_h100.log"
ITERATIONS=500 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=0 TRAIN_LOG_EVERY=100 RUN_ID=golfc_call30_500_h100 \
  timeout 250 python3 train_gpt.py > "$OUT/golfc_call30_500_h100.log" 2>&1
grep -E "^(step:500/500 train_loss|step:.*val_bpb|Serialized model int8|final_)" "$OUT/golfc_call30_500_h100.log"
