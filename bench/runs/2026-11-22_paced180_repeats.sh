#!/usr/bin/env bash
# Device call 11 (one H100): the reference-paced 180 s run of call 6 again, once with the same seed (run-to-run
# noise of the GPU kernels) and once with another seed, to see how far a single paced result can be trusted.
set -u
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
for seed in 1337 42; do
  MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 SEED=$seed RUN_ID=golfc_paced180_seed${seed}_h100 \
    timeout 285 python3 "$ROOT/bench/paced_run.py" --pace 1.30 train_gpt.src.py > "$OUT/golfc_paced180_seed${seed}_h100.log" 2>&1
  grep -E "^(step:.*val_bpb|stopping_early|Serialized model int8|final_)" "$OUT/golfc_paced180_seed${seed}_h100.log"
done
