#!/usr/bin/env bash
# Device call 19 (one H100, right after call 18): the final build at equal steps (ITERATIONS=500, no cap) and
# at the 180 s setting at the reference's pace (clock dilated x1.31 = 360.45 / 275.3 ms, call 18's step time).
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
ITERATIONS=500 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=0 TRAIN_LOG_EVERY=100 RUN_ID=golfc_final500_h100 \
  timeout 270 python3 train_gpt.py > "$OUT/golfc_final500_h100.log" 2>&1
grep -E "^(step:500/500 train_loss|step:.*val_bpb|peak memory|Serialized model int8|final_)" "$OUT/golfc_final500_h100.log"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_final_paced180_h100 \
  timeout 300 python3 "$ROOT/bench/paced_run.py" --pace 1.31 train_gpt.src.py > "$OUT/golfc_final_paced180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|Serialized model int8|final_)" "$OUT/golfc_final_paced180_h100.log"
