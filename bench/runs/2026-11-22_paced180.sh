#!/usr/bin/env bash
# Device call 6 (one H100): the issue's 180 s setting twice. First at the reference's pace: the clock the
# program reads is dilated x1.30 (= 360.45 / 277.3 ms per step, bench/paced_run.py), so the cap and the
# wall-clock warmdown see the reference's step time while the GPU computes as always. Then at golfc's own
# pace with validation every 50 steps (validation time is outside the clock, so the run is unchanged) to
# show where the extra steps go.
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_paced180_h100 \
  timeout 280 python3 "$ROOT/bench/paced_run.py" --pace 1.30 train_gpt.src.py > "$OUT/golfc_paced180_h100.log" 2>&1
grep -E "^(paced_run|step:(1|2|100|200|300|400|500)/|step:.*val_bpb|stopping_early|Serialized model int8|final_)" "$OUT/golfc_paced180_h100.log"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=50 RUN_ID=golfc_curve180_h100 \
  timeout 300 python3 train_gpt.py > "$OUT/golfc_curve180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|Serialized model int8|final_)" "$OUT/golfc_curve180_h100.log"
