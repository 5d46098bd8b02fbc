#!/usr/bin/env bash
# Device call 4 (one H100): the benchmark setting of the foundation issue with the final build:
# MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0, everything else at the defaults.
set -u
export PYTHONUNBUFFERED=1
ROOT=$(pwd)
DATA="$ROOT/.devdata/data"
export DATA_PATH="$DATA/datasets/fineweb10B_sp1024" TOKENIZER_PATH="$DATA/tokenizers/fineweb_1024_bpe.model" VOCAB_SIZE=1024
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cd "$ROOT/.devdata/build"
MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_baseline180_h100 timeout 400 python3 train_gpt.py > "$OUT/golfc_baseline180_h100.log" 2>&1
grep -E "^(model_params|step:(100|200|300|400|500|600)/|step:.*val_bpb|stopping_early|peak memory|Serialized|Code size|Total submission|final_)" "$OUT/golfc_baseline180_h100.log"
