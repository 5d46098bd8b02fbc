#!/usr/bin/env bash
# Device call 8 (one H100): the optimizer steps timed on their own (GPU and host time), and the step
# with a leaner Muon.step (multi-tensor momentum over all matrices, bf16 updates added in place on one
# rank: no flat buffer, no per-matrix slices and casts) against the current one, in one process.
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 560 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,muon_lean,base \
  --json "$OUT/call8_profile.json" 2>&1 | tee "$OUT/call8_profile.log"
