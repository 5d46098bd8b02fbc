#!/usr/bin/env bash
# Device call 4 (one H100): the benchmark setting of the foundation issue with the final build:
# MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0, everything else at the defaults.
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_baseline180_h100 timeout 400 python3 train_gpt.py > "$OUT/golfc_baseline180_h100.log" 2>&1
grep -E "^(model_params|step:(100|200|300|400|500|600)/|step:.*val_bpb|stopping_early|peak memory|Serialized|Code size|Total submission|final_)" "$OUT/golfc_baseline180_h100.log"
