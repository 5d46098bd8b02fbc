#!/usr/bin/env bash
# Device call 10 (one H100): two compile modes against the default, in one process: CUDA graphs
# (mode="reduce-overhead") for the forward and backward graphs, and inductor's GEMM autotuning
# (mode="max-autotune-no-cudagraphs", Triton templates that can fuse relu² and casts into matmul epilogues).
set -u
source "$(dirname "$0")/../device_env.sh"
timeout 570 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,cudagraphs,autotune \
  --json "$OUT/call10_modes.json" 2>&1 | grep -v "^  " | tee "$OUT/call10_modes.log"
