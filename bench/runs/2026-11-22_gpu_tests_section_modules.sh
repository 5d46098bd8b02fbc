#!/usr/bin/env bash
# Device call 21 (one H100): the GPU parity tests with the loader that moves each section's classes into a
# module named after the section (inspect.getsource of classes), then the issue's 180 s setting with that build
# (torch.compile of the model whose classes now live in those modules).
set -u
bash "$(dirname "$0")/../device_gpu_tests.sh" > /dev/null 2>&1; tail -1 "$OUT/gpu_tests.log"
source "$(dirname "$0")/../device_env.sh"
cd "$BUILD"
python3 -c "import inspect, sys; sys.argv=['x']; import train_gpt as t; print(t.GPT.__module__, inspect.getsource(t.GPT).splitlines()[0])"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_call21_180_h100 timeout 330 python3 train_gpt.py > "$OUT/golfc_call21_180_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|peak memory|Serialized model|Code size|final_)" "$OUT/golfc_call21_180_h100.log"
