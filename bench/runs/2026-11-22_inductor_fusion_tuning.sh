#!/usr/bin/env bash
# Device call 12 (one H100): two inductor settings against the default, in one process: aggressive_fusion
# (fuse nodes even without shared reads) and coordinate_descent_tuning (tune the Triton kernels' block sizes).
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 570 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --no-profile \
  --variants base,aggressive_fusion,base,coordinate_descent --json "$OUT/call12_inductor.json" 2>&1 \
  | grep -E "^[a-z_]+: " | tee "$OUT/call12_inductor.log"
