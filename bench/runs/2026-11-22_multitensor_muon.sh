#!/usr/bin/env bash
# Device call 23 (one H100): Muon's step in multi-tensor form (adopted in session 5). The GPU parity tests
# (optimizer step on GPU against CPU among them), then, in one process each, the adopted step against the
# per-matrix form it replaces (variant muon_per_matrix): one rank's share of an eight-GPU step, and the
# whole one-GPU step.
set -u
bash "$(dirname "$0")/../device_gpu_tests.sh" > /dev/null 2>&1; tail -1 "$OUT/gpu_tests.log"
source "$(dirname "$0")/../device_env.sh"
timeout 200 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,muon_per_matrix,base --rank-of 8 \
  --no-profile --json "$OUT/call23_rank_of_8.json" 2>&1 | grep -v "^tie_embeddings" | tee "$OUT/call23_rank_of_8.log"
timeout 200 python3 bench/profile_step.py "$BUILD/train_gpt.src.py" --variants base,muon_per_matrix --rank-of 1 \
  --no-profile --json "$OUT/call23_rank_of_1.json" 2>&1 | grep -v "^tie_embeddings" | tee "$OUT/call23_rank_of_1.log"
