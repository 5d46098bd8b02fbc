#!/usr/bin/env bash
# Device call 7 (one H100): where the step's GPU time goes (torch.profiler over 3 steps of the baseline
# build at the real per-GPU shapes), and ms/step of candidate changes, all in one process.
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 560 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,fused_qkv \
  --json "$OUT/call7_profile.json" 2>&1 | tee "$OUT/call7_profile.log"
