#!/usr/bin/env bash
# Device call 15 (one H100): the GPU parity tests with the (B, T, H, D) attention memory order (now also fed
# transposed views, and checking that cuDNN returns y in q's memory order), then the 180 s setting at the
# reference's pace for this build: clock dilated x1.33 = 360.45 / 271.3 ms (call 14's step time).
set -u
bash "$(dirname "$0")/../device_gpu_tests.sh" 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tail -40
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_bthd_paced180_h100 \
  timeout 300 python3 "$ROOT/bench/paced_run.py" --pace 1.33 train_gpt.src.py > "$OUT/golfc_bthd_paced180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|Serialized model int8|final_)" "$OUT/golfc_bthd_paced180_h100.log"
