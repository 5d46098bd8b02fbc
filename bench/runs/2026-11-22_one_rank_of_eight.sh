#!/usr/bin/env bash
# Device call 22 (one H100): what one rank of an eight-GPU run computes (one 64 x 1024 micro-batch per step,
# Muon on an eighth of the matrices, no communication), against the whole one-GPU step, with the host's own
# launch time per step: is the step of one rank of eight host-bound? Variants as in calls 8 and 10.
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 250 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,muon_lean,cudagraphs --rank-of 8 \
  --json "$OUT/call22_rank_of_8.json" 2>&1 | tee "$OUT/call22_rank_of_8.log"
timeout 150 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base --rank-of 1 --no-profile \
  --json "$OUT/call22_rank_of_1.json" 2>&1 | tee "$OUT/call22_rank_of_1.log"
