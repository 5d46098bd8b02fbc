#!/usr/bin/env bash
# Device call 18 (one H100): the GPU parity tests with the loader that runs in a function (tracebacks,
# @triton.jit and torch.compile from sections), then the issue's 180 s setting with that build.
set -u
bash "$(dirname "$0")/../device_gpu_tests.sh" > /dev/null 2>&1; tail -1 "$OUT/gpu_tests.log"
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_final180_h100 timeout 330 python3 train_gpt.py > "$OUT/golfc_final180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|peak memory|Serialized model|Code size|final_)" "$OUT/golfc_final180_h100.log"
