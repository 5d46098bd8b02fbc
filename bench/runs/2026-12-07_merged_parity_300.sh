#!/usr/bin/env bash
# 2026-12-07, one GPU: after the run-time architecture, design-card, artifact, verify, catalogue and audit branches
# were merged, does the baseline build still train like the reference, and as fast as before? STEPS equal steps
# (default 300), seed 1337, no cap: the reference as shipped and the merged build (.devdata/build), then the build
# of the pre-merge tree (.devdata/build_before, commit b009577) alone, one after the other on one GPU; then, in
# what is left of a 600 s call, the new GPU parity tests (GPU_TESTS, a pytest -k expression; empty: none).
# Usage: bash bench/runs/2026-12-07_merged_parity_300.sh [STEPS] [GPU_TESTS]
source bench/runs/parity_env.sh
STEPS=${1:-300}
python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps $STEPS --programs reference,golfc \
  --work /tmp/pm --json $OUT/parity_${STEPS}_merged.json > $OUT/parity_${STEPS}_merged.txt 2>&1
tail -28 $OUT/parity_${STEPS}_merged.txt
python3 bench/parity.py --build .devdata/build_before --reference $REF "${FULL[@]}" --steps $STEPS --programs golfc \
  --work /tmp/pb --json $OUT/parity_${STEPS}_before.json > $OUT/parity_${STEPS}_before.txt 2>&1
tail -12 $OUT/parity_${STEPS}_before.txt
if [ -n "${2:-}" ]; then
  # the tests get what is left of a 600 s device call (less 15 s to bring $OUT back)
  timeout $(( 585 - SECONDS )) python3 -m pytest tests/gpu -k "$2" -o addopts="--import-mode=importlib" -v -p no:cacheprovider \
    > $OUT/gpu_tests.txt 2>&1; tail -25 $OUT/gpu_tests.txt
fi
