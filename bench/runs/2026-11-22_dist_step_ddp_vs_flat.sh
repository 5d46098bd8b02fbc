#!/usr/bin/env bash
# Device call 25 (four H200s, one host): what gradient communication and the per-step stop agreement cost one
# rank at the eight-GPU challenge's per-rank shape (one 64 x 1024 micro-batch per step), with DDP's bucketed
# all-reduce overlapping the backward (the program's wiring now) against one flat all-reduce after it (before),
# and the stop flag agreed on the hosts (gloo) against an NCCL all-reduce read back with .item().
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/../device_env.sh"
timeout 540 torchrun --standalone --nproc_per_node=4 bench/dist_step.py "$BUILD/train_gpt.src.py" --accum 1 \
  --variants ddp+gloo,manual+nccl,manual+none,ddp+none,none+none,ddp+gloo --json "$OUT/call25_dist_step.json" \
  > "$OUT/call25_dist_step.log" 2>&1
echo "rc=$?"; grep -E "ms/step|^\{" "$OUT/call25_dist_step.log"; grep -iE "error|Traceback" "$OUT/call25_dist_step.log" | head -5
