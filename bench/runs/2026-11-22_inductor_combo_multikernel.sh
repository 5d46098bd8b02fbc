#!/usr/bin/env bash
# Device call 31 (one H100): two inductor settings not tried before, in one process against the base build
# (base first and last): combo kernels (independent neighbouring kernels fused horizontally) and multi-kernel
# reductions (persistent or looped chosen at run time). The whole one-GPU step, no profile.
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 560 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,combo_kernels,multi_kernel,base \
  --no-profile --json "$OUT/call31_inductor.json" 2>&1 | grep -v "^tie_embeddings" | tee "$OUT/call31_inductor.log"
