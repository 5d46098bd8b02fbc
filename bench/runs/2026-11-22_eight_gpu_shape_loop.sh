#!/usr/bin/env bash
# Device call 29 (four H200s): does the real training loop show, at the eight-GPU per-rank shape, the step time
# that eight H200s showed in call 20 (36-40 ms per 50-step stretch against 32 in its first ten steps)? The
# program runs through bench/shape_run.py with one 64 x 1024 micro-batch per rank (call 20's settings otherwise:
# 300 steps, validation and a train log line every 50), once as it is and once with the cyclic garbage
# collector frozen after the compile warmup; then bench/dist_step.py at the same shape, for the harness figure.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/../device_env.sh"
export TRAIN_BATCH_TOKENS=262144 ITERATIONS=300 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=50 TRAIN_LOG_EVERY=50
for mode in plain gc_freeze; do
  flag=""; [ "$mode" = gc_freeze ] && flag="--gc-freeze"
  (cd "$BUILD" && RUN_ID=call29_$mode timeout 200 torchrun --standalone --nproc_per_node=4 "$ROOT/bench/shape_run.py" \
    --accum 1 $flag train_gpt.src.py > "$OUT/call29_$mode.log" 2>&1)
  echo "== $mode rc=$?"; grep -E "^(world_size|step:(10|50|100|150|200|250|300)/|final_int8_zlib_roundtrip_exact)" "$OUT/call29_$mode.log"
  grep -iE "Traceback|Error" "$OUT/call29_$mode.log" | head -3
done
unset TRAIN_BATCH_TOKENS
timeout 150 torchrun --standalone --nproc_per_node=4 bench/dist_step.py "$BUILD/train_gpt.src.py" --accum 1 \
  --variants manual+none,manual+gloo --json "$OUT/call29_dist_step.json" > "$OUT/call29_dist_step.log" 2>&1
echo "rc=$?"; grep -E "ms/step" "$OUT/call29_dist_step.log"
