#!/usr/bin/env bash
# 2026-12-07, one GPU: the golfc baseline trained once (300 steps, stand-in data, no cap), its final_model.pt
# exported with each artifact scheme through the scheme's own program (int8+zlib, int6+zstd, int6+brotli with byte
# shuffle, mixed int5/int6+zstd, GPTQ int6+zstd, GPTQ+LQER, GPTQ+SDClip+brotli; int6+pergroup with and without
# its row reorder, with the record's reordered roles and with auto-chosen roles, GPTQ+SDClip+pergroup): artifact bytes, roundtrip val_bpb,
# GPTQ calibration seconds, in one table and bench/results/2026-12-07_artifact_schemes.json. zstandard and brotli
# come as wheels in .whl (parity_env.sh installs them). The exports run eagerly (COMPILE=0: no compile per scheme).
source bench/runs/parity_env.sh
python3 -c "import zstandard, brotli; print('zstandard', zstandard.__version__, 'brotli', brotli.__version__)" || exit 1
python3 bench/artifact_schemes.py "${FULL[@]}" --steps 300 --work /tmp/schemes --export-env COMPILE=0 \
  --json $OUT/2026-12-07_artifact_schemes.json > $OUT/artifact_schemes.txt 2>&1; tail -19 $OUT/artifact_schemes.txt
