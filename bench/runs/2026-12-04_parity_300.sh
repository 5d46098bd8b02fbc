#!/usr/bin/env bash
# 2026-12-04, one H200: does the RoPE-table fix give the reference's training? The reduced shape of the GPU
# parity test for golfc before (.devdata/build_old, commit b54256b) and after the fix, then the full baseline
# at 300 equal steps, reference (flash, as shipped) against golfc (cuDNN, its default), one after the other.
source bench/runs/parity_env.sh
python3 bench/parity.py --build .devdata/build_old --reference $REF "${TINY[@]}" "${REDUCED[@]}" --golfc-env SDPA_BACKEND=flash \
  --programs reference,golfc --work /tmp/p_old --json $OUT/reduced_old.json > $OUT/reduced_old.txt 2>&1; tail -25 $OUT/reduced_old.txt
python3 bench/parity.py --build .devdata/build --reference $REF "${TINY[@]}" "${REDUCED[@]}" --golfc-env SDPA_BACKEND=flash \
  --programs reference,golfc --work /tmp/p_new --json $OUT/reduced_new.json > $OUT/reduced_new.txt 2>&1; tail -25 $OUT/reduced_new.txt
python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps 300 --programs reference,golfc \
  --work /tmp/p300 --json $OUT/parity_300.json > $OUT/parity_300.txt 2>&1; tail -40 $OUT/parity_300.txt
