#!/usr/bin/env bash
# One GPU against N GPUs of the same host: usage `bash bench/device_compare_ranks.sh N TAG`. The same build
# runs 300 steps on 1 GPU and on N (grad_accum_steps 8 -> 8/N, same global batch), validating every 50 steps;
# logs go to $OUT/TAG_1gpu.log and $OUT/TAG_<N>gpu.log and the val_bpb curves are printed side by side.
set -u
N=${1:?usage: device_compare_ranks.sh N TAG}
TAG=${2:?usage: device_compare_ranks.sh N TAG}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
source "$(dirname "$0")/device_env.sh"
export ITERATIONS=300 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=50 TRAIN_LOG_EVERY=50
cd "$BUILD"
for n in 1 "$N"; do
  RUN_ID=${TAG}_${n}gpu timeout 240 torchrun --standalone --nproc_per_node="$n" train_gpt.py > "$OUT/${TAG}_${n}gpu.log" 2>&1
done
for n in 1 "$N"; do echo "== $n GPU"; grep -E "^(world_size|step:.*val_bpb|final_int8_zlib_roundtrip_exact)" "$OUT/${TAG}_${n}gpu.log"; done
