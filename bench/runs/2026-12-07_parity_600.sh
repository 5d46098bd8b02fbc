#!/usr/bin/env bash
# 2026-12-07, one GPU: issue 11's remaining figures. 600 equal steps (ITERATIONS=600, no cap, seed 1337, stand-in
# data, vocab 1024), in two device calls on one warm machine, since the three programs together outrun one call:
#   part 1: the reference as shipped (flash SDPA) and the golfc baseline build (cuDNN), one after the other;
#   part 2: the reference with cuDNN SDPA, then bench/profile_step.py on the golfc build (where the step goes).
# Usage: bash bench/runs/2026-12-07_parity_600.sh 1|2
source bench/runs/parity_env.sh
case "${1:?part 1 or 2}" in
  1) python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps 600 --programs reference,golfc \
       --work /tmp/p600 --json $OUT/parity_600_ref_golfc.json > $OUT/parity_600_ref_golfc.txt 2>&1
     tail -45 $OUT/parity_600_ref_golfc.txt ;;
  2) python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps 600 --programs reference_cudnn \
       --work /tmp/p600c --json $OUT/parity_600_cudnn.json > $OUT/parity_600_cudnn.txt 2>&1
     tail -20 $OUT/parity_600_cudnn.txt
     python3 bench/profile_step.py .devdata/build/train_gpt.src.py --variants base --json $OUT/profile_600.json \
       > $OUT/profile.txt 2>&1; tail -60 $OUT/profile.txt ;;
esac
