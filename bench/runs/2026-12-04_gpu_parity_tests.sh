#!/usr/bin/env bash
# 2026-12-04, one H200: the two GPU parity tests (tests/gpu/test_reference_parity.py) with the fixed tables,
# then the same reduced run for golfc before the fix (.devdata/build_old) for the tolerance's margin.
source bench/runs/parity_env.sh
GOLFC_REFERENCE=$PWD/$REF timeout 300 python3 -m pytest tests/gpu/test_reference_parity.py -o addopts="--import-mode=importlib" \
  -v -s -p no:cacheprovider 2>&1 | grep -v Warning | tee $OUT/gpu_parity_tests.txt | tail -30
python3 bench/parity.py --build .devdata/build_old --reference $REF "${TINY[@]}" --steps 30 --log-every 1 \
  --env NUM_LAYERS=2 --env MODEL_DIM=128 --env NUM_HEADS=2 --env NUM_KV_HEADS=1 --env TRAIN_SEQ_LEN=1024 \
  --env TRAIN_BATCH_TOKENS=65536 --env VAL_BATCH_SIZE=65536 --env WARMDOWN_ITERS=120 --env WARMUP_STEPS=2 \
  --golfc-env SDPA_BACKEND=flash --programs reference,golfc --work /tmp/p_old30 --json $OUT/reduced30_old.json \
  > $OUT/reduced30_old.txt 2>&1; tail -14 $OUT/reduced30_old.txt
