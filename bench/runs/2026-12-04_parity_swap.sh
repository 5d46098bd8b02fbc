#!/usr/bin/env bash
# 2026-12-04, one H200: golfc's math still trained apart from the reference at 300 steps after the RoPE fix.
# Which side is it, model or optimizer? bench/parity_swap.py, 100 steps of the 300-step schedule, four variants.
source bench/runs/parity_env.sh
export DATA_PATH=.devdata/data/datasets/fineweb10B_sp1024 TOKENIZER_PATH=.devdata/data/tokenizers/fineweb_1024_bpe.model VOCAB_SIZE=1024
python3 bench/parity_swap.py --reference $REF --program .devdata/build/train_gpt.src.py --steps 100 --run-iterations 300 \
  --json $OUT/swap.json 2>&1 | grep -v "^tie_embeddings" | tee $OUT/swap.txt
