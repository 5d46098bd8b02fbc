#!/usr/bin/env bash
# 2026-12-04, one H200: the model side trains apart (2026-12-04_parity_swap.sh). Which RoPE tables does the
# reference really train with on the GPU (bench/rope_tables.py)? Then 300 equal steps, reference against the golfc
# build whose tables match them (build_A: bf16 positions; build_B: exact positions); if neither differs from
# call 1's build, the swap harness with the reference's own tables injected into golfc's model instead.
source bench/runs/parity_env.sh
python3 bench/rope_tables.py --reference $REF --program .devdata/build_A/train_gpt.src.py \
  --program .devdata/build_B/train_gpt.src.py --json $OUT/rope_tables.json 2>&1 | grep -v Warning | tee $OUT/rope_tables.txt
pick=$(python3 -c "
import json; r=json.load(open('$OUT/rope_tables.json'))['rows']
a, b = r['golfc build_A']['max_abs_diff'], r['golfc build_B']['max_abs_diff']
print('B' if b < a else 'A')")
echo "closest build: $pick"
if [ "$pick" = B ]; then
  python3 bench/parity.py --build .devdata/build_B --reference $REF "${FULL[@]}" --steps 300 --programs reference,golfc \
    --work /tmp/p300 --json $OUT/parity_300.json > $OUT/parity_300.txt 2>&1; tail -42 $OUT/parity_300.txt
else
  export DATA_PATH=.devdata/data/datasets/fineweb10B_sp1024 TOKENIZER_PATH=.devdata/data/tokenizers/fineweb_1024_bpe.model VOCAB_SIZE=1024
  python3 bench/parity_swap.py --reference $REF --program .devdata/build_A/train_gpt.src.py --steps 100 \
    --variants golfc+rt/golfc,ref/ref --json $OUT/swap_rt.json 2>&1 | grep -v "^tie_embeddings" | tee $OUT/swap_rt.txt
fi
