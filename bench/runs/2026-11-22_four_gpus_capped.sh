#!/usr/bin/env bash
# Device call 26 (four H200s): the program itself on four GPUs under a wall-clock cap (gradients by the flat
# all-reduce, the stop agreed on the hosts over gloo), 200 steps validating every 100, against
# bench/dist_step.py at the same shape (two micro-batches per rank): what the real loop adds to the step
# (loader, logging) beyond the model, the optimizers and the communication.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/../device_env.sh"
(cd "$BUILD" && ITERATIONS=200 MAX_WALLCLOCK_SECONDS=600 VAL_LOSS_EVERY=100 TRAIN_LOG_EVERY=50 RUN_ID=call26_4gpu \
  timeout 300 torchrun --standalone --nproc_per_node=4 train_gpt.py > "$OUT/call26_4gpu.log" 2>&1)
echo "rc=$?"; grep -E "^(world_size|step:|final_int8_zlib_roundtrip|peak)" "$OUT/call26_4gpu.log"
grep -iE "Traceback|Error" "$OUT/call26_4gpu.log" | head -5
timeout 240 torchrun --standalone --nproc_per_node=4 bench/dist_step.py "$BUILD/train_gpt.src.py" --accum 2 \
  --variants manual+gloo,manual+nccl,manual+gloo --json "$OUT/call26_dist_step_accum2.json" > "$OUT/call26_dist_step_accum2.log" 2>&1
echo "rc=$?"; grep -E "ms/step|^\{" "$OUT/call26_dist_step_accum2.log"
timeout 120 torchrun --standalone --nproc_per_node=4 bench/dist_step.py "$BUILD/train_gpt.src.py" --accum 1 \
  --variants manual+gloo,manual+none --json "$OUT/call26_dist_step_accum1.json" > "$OUT/call26_dist_step_accum1.log" 2>&1
echo "rc=$?"; grep -E "ms/step|^\{" "$OUT/call26_dist_step_accum1.log"
