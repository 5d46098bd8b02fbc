#!/usr/bin/env bash
# Device call 27 (two H200s): do the ranks end with the same weights? The program at its defaults under a 40 s
# cap (the warmdown reads the clock from the first step: 1200 steps of ~130 ms are longer than the cap), each
# rank's final weights kept by bench/rank_weights.py and compared with rank 0's. This build agrees on one
# clock across ranks; .devdata/build_prev (commit 8dec56d) let every rank read its own.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/../device_env.sh"
TOOL="$ROOT/bench/rank_weights.py"
for build in build build_prev; do
  dir="$ROOT/.devdata/$build"
  (cd "$dir" && MAX_WALLCLOCK_SECONDS=40 VAL_LOSS_EVERY=0 RUN_ID=call27_$build \
    timeout 240 torchrun --standalone --nproc_per_node=2 "$TOOL" run train_gpt.src.py --keep "$dir/kept" \
    > "$OUT/call27_$build.log" 2>&1)
  echo "== $build rc=$?"; grep -E "^(world_size|stopping_early|step:.*val_bpb|final_int8_zlib_roundtrip_exact)" "$OUT/call27_$build.log"
  grep -iE "Traceback|Error" "$OUT/call27_$build.log" | head -3
  python3 "$TOOL" compare "$dir/kept" > "$OUT/call27_${build}_compare.txt"; echo "compare rc=$?"
  tail -1 "$OUT/call27_${build}_compare.txt"; head -3 "$OUT/call27_${build}_compare.txt"
done
