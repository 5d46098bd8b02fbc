#!/usr/bin/env bash
# 2026-12-08, one GPU: issue 15's second record rebuilt as a recipe, side by side with the record's own script. The
# 04-27 record's train_gpt.py (PR #1855, from openai/parameter-golf, copied to .devdata/records/2026-04-27_PR1855;
# it imports FlashAttention-3 dense and varlen, so bench/flash_attn_shim stands in: SDPA underneath, the varlen form
# one sequence at a time, so its ms/step is not its FA3 ms/step) and the golfc recipe
# submissions/2026-04-27_PR1855_architecture_recipe, run one after another by bench/parity.py on the stand-in data
# tokenized at vocab 8192 (`golfc data build --docs ../shared/data/standin-docs.jsonl.xz --vocab 8192 -o
# .devdata/data8192`, 32 MB: carry .devdata/data8192, not .devdata/data beside it, the carry limit is 64 MiB), same
# seed and schedule: ITERATIONS=$STEPS, no clock (both warm down over 85% of the run and switch the layer loop on
# at 35% of it). The record runs with its README's settings except CaseOps (off: the plain SP8192 data) and its
# compressor (brotli: its pergroup calls the lrzip binary, which the device lacks). Its final score is its phased TTT
# (global SGD + per-document LoRA), golfc's its per-document LoRA TTT: the two final scores are not the same
# procedure (submissions/.../README.md says how they differ); the train losses and the last step's pre-quant score
# are. Weights are not compared tensor by tensor. Usage: `bash THIS [STEPS]` (default 60); PROGRAMS=reference or
# golfc runs one (TIMEOUT seconds each, default 290), for a pair that outruns one call: join the two JSON files
# with `python bench/parity.py merge A.json B.json --json OUT.json`.
source bench/runs/parity_env.sh
DATA8192=(--data "$PWD/.devdata/data8192/datasets/fineweb10B_sp8192"
          --tokenizer "$PWD/.devdata/data8192/tokenizers/fineweb_8192_bpe.model" --vocab 8192)
RECORD_ENV=(CASEOPS_ENABLED=0 COMPRESSOR=brotli PHASED_TTT_ENABLED=1 PHASED_TTT_PREFIX_DOCS=2500
  PHASED_TTT_NUM_PHASES=3 EMBED_BITS=7 MATRIX_LR=0.026 MIN_LR=0.1 MLP_CLIP_SIGMAS=11.5 ATTN_CLIP_SIGMAS=13.0
  EMBED_CLIP_SIGMAS=14.0 GRAD_CLIP_NORM=0.3 TTT_CHUNK_SIZE=48 WARMUP_STEPS=20 MUON_BACKEND_STEPS=5
  GLOBAL_TTT_MOMENTUM=0.9 WARMDOWN_FRAC=0.85 BETA2=0.99 TTT_BETA2=0.99 TTT_WEIGHT_DECAY=0.5 TTT_LORA_RANK=80
  SPARSE_ATTN_GATE_SCALE=0.5 GPTQ_RESERVE_SECONDS=0.5 GPTQ_CALIBRATION_BATCHES=16 GATED_ATTN_QUANT_GATE=1
  SPARSE_ATTN_GATE_ENABLED=1 GATE_WINDOW=12 SMEAR_GATE_ENABLED=1 LQER_ENABLED=1 LQER_ASYM_ENABLED=1 LQER_RANK=4
  LQER_FACTOR_BITS=4 LQER_ASYM_GROUP=64 LQER_TOP_K=3 FUSED_CE_ENABLED=1)
record_pair 1855 .devdata/records/2026-04-27_PR1855/train_gpt.py submissions/2026-04-27_PR1855_architecture_recipe \
  "${1:-60}" "${DATA8192[@]}" $(printf -- "--reference-env %s " "${RECORD_ENV[@]}")
