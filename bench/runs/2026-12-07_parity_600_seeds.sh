#!/usr/bin/env bash
# 2026-12-07 (fifth session), one GPU: issue 11's open question. At 600 equal steps (seed 1337) golfc's pre-quant
# val_bpb was +0.0071 from the reference's (bound 0.005) while train loss and roundtrip agreed; one sample per
# program cannot tell a math difference from two trajectories' spread. This runs the reference as shipped and the
# golfc baseline build side by side on another seed, same data and schedule (ITERATIONS=600, no cap), one seed per
# device call (the pair takes ~530 s): `bash THIS 42`, then `bash THIS 2024` on the same warm machine.
source bench/runs/parity_env.sh
SEED=${1:?seed}
python3 bench/parity.py --build .devdata/build --reference $REF "${FULL[@]}" --steps 600 --seed $SEED \
  --programs reference,golfc --work /tmp/p600_$SEED --json $OUT/parity_600_seed$SEED.json \
  > $OUT/parity_600_seed$SEED.txt 2>&1
tail -45 $OUT/parity_600_seed$SEED.txt
