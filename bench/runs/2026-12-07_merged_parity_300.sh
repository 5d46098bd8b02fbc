#!/usr/bin/env bash
# 2026-12-07, one GPU: after the run-time architecture, design-card, artifact and verify branches were merged,
# does the baseline build still train like the reference, and as fast as before? 300 equal steps, seed 1337, no
# cap: the reference as shipped and the merged build (.devdata/build), then the build of the pre-merge tree
# (.devdata/build_before, commit b009577) alone, one after the other on one GPU.
source bench/runs/parity_env.sh
python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps 300 --programs reference,golfc \
  --work /tmp/p300 --json $OUT/parity_300_merged.json > $OUT/parity_300_merged.txt 2>&1
tail -28 $OUT/parity_300_merged.txt
python3 bench/parity.py --build .devdata/build_before --reference $REF "${FULL[@]}" --steps 300 --programs golfc \
  --work /tmp/p300b --json $OUT/parity_300_before.json > $OUT/parity_300_before.txt 2>&1
tail -12 $OUT/parity_300_before.txt
