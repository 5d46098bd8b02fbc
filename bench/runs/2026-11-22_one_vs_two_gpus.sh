#!/usr/bin/env bash
# Device call 3 (two H200s): the same build on 1 GPU and on 2 GPUs (grad_accum_steps 8 -> 4, same global
# batch), 300 steps each with validation every 50 steps, to compare the loss curves.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/../device_env.sh"
export ITERATIONS=300 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=50 TRAIN_LOG_EVERY=50
cd "$BUILD"
RUN_ID=golfc_1gpu_h200 timeout 240 torchrun --standalone --nproc_per_node=1 train_gpt.py > "$OUT/golfc_1gpu_h200.log" 2>&1
RUN_ID=golfc_2gpu_h200 timeout 240 torchrun --standalone --nproc_per_node=2 train_gpt.py > "$OUT/golfc_2gpu_h200.log" 2>&1
for f in 1gpu 2gpu; do echo "== $f"; grep -E "^(world_size|step:.*val_bpb|final_int8_zlib_roundtrip_exact)" "$OUT/golfc_${f}_h200.log"; done
