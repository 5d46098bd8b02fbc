#!/usr/bin/env bash
# 2026-12-07, one GPU (issue 15, position and attention plugins): first the flash_attn GPU parity test (FA3/FA4
# against SDPA; it skips where neither is installed), then the golfc baseline against partial_rope, yarn_rope,
# ln_scale, partial_rope+ln_scale and flash_attn at equal steps on the stand-in data (bench/design_card.py's table:
# ms/step, pre-quant and roundtrip val_bpb, artifact bytes). flash_attn's row fails at start-up, in one line, where
# flash_attn_interface / flash_attn.cute is missing (the device image lacks FA3 so far).
# Usage: bash bench/runs/2026-12-07_pos_attn_plugins.sh [STEPS]   (default 120)
# Carry .devdata (the stand-in data) and .whl (python-minifier); results in $OUT: pos_attn.json, pos_attn.txt,
# gpu_tests.log, each program's console in $OUT/consoles.tar.gz.
# Budget: 6 compiles + 6 x 120 steps at ~0.25 s + evaluations: about 6-8 minutes on an H100/H200.
source bench/runs/parity_env.sh
STEPS=${1:-120}
python3 -c "import flash_attn_interface" 2>/dev/null && echo "flash_attn_interface (FA3): importable" \
  || echo "flash_attn_interface (FA3): not importable"
python3 -m pytest tests/gpu/test_flash_attn_parity.py -o addopts="--import-mode=importlib" -v -p no:cacheprovider \
  > "$OUT/gpu_tests.log" 2>&1
tail -8 "$OUT/gpu_tests.log"
python3 bench/design_card.py "${FULL[@]}" --steps "$STEPS" --seq-lens "" --work /tmp/pos_attn \
  --programs "baseline partial_rope yarn_rope ln_scale partial_rope,ln_scale flash_attn" \
  --json "$OUT/pos_attn.json" > "$OUT/pos_attn.txt" 2>&1
status=$?
tail -20 "$OUT/pos_attn.txt"
pack_consoles "$OUT/consoles.tar.gz" /tmp/pos_attn  # one archive: the device returns at most eight files a call
exit $status
