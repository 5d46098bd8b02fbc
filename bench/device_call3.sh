#!/usr/bin/env bash
# Device call 3 (two H200s): the same build on 1 GPU and on 2 GPUs (grad_accum_steps 8 -> 4, same global
# batch), 300 steps each with validation every 50 steps, to compare the loss curves.
set -u
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
ROOT=$(pwd)
DATA="$ROOT/.devdata/data"
BUILD="$ROOT/.devdata/build"
export DATA_PATH="$DATA/datasets/fineweb10B_sp1024" TOKENIZER_PATH="$DATA/tokenizers/fineweb_1024_bpe.model" VOCAB_SIZE=1024
export ITERATIONS=300 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=50 TRAIN_LOG_EVERY=50
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cd "$BUILD"
RUN_ID=golfc_1gpu_h200 timeout 240 torchrun --standalone --nproc_per_node=1 train_gpt.py > "$OUT/golfc_1gpu_h200.log" 2>&1
RUN_ID=golfc_2gpu_h200 timeout 240 torchrun --standalone --nproc_per_node=2 train_gpt.py > "$OUT/golfc_2gpu_h200.log" 2>&1
for f in 1gpu 2gpu; do echo "== $f"; grep -E "^(world_size|step:.*val_bpb|final_int8_zlib_roundtrip_exact)" "$OUT/golfc_${f}_h200.log"; done
