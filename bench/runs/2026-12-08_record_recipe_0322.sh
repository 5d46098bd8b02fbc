#!/usr/bin/env bash
# 2026-12-08, one GPU: issue 15's first record rebuilt as a recipe, side by side with the record's own script. The
# 2026-03-22 11-layer record's train_gpt.py (from openai/parameter-golf, copied to .devdata/records/2026-03-22_11L;
# it imports FlashAttention-3, which the device lacks, so bench/flash_attn_shim stands in: SDPA underneath) and the
# golfc recipe submissions/2026-03-22_11L_EMA_GPTQ-lite_recipe, run one after another by bench/parity.py on the
# same stand-in data (sp1024), seed and schedule: ITERATIONS=$STEPS at the record's batch (786,432 tokens of 2048),
# no clock, the warmdown scaled to half the run (the record's 3500 would keep a short run near zero LR; LATE_QAT
# then switches on in the last 15% of the warmdown in both). Reported: the loss curves, pre-quant val_bpb (the last
# step, before the EMA), the final score (the record's last final_*_exact line, golfc's roundtrip: both int6
# sliding-window at stride 64), ms/step, peak memory, artifact bytes. Weights are not compared tensor by tensor:
# the record names them its own way. Usage: `bash THIS [STEPS]` (default 100); PROGRAMS=reference or golfc runs one
# (TIMEOUT seconds each, default 290). The 2026-12-08 call: the record alone ran past 290 s at 40 steps (809 ms/step,
# then its stride-64 sliding-window eval unfinished), so run the two in two calls on one warm machine:
# `PROGRAMS=reference TIMEOUT=540 bash THIS 40`, then `PROGRAMS=golfc TIMEOUT=540 bash THIS 40`, and join their JSON
# files here with `python bench/parity.py merge A.json B.json --json OUT.json` (it refuses other device, steps or
# seed). console_timed.log (in the archive) says where each run spent its time.
source bench/runs/parity_env.sh
STEPS=${1:-100}
record_pair 0322 .devdata/records/2026-03-22_11L/train_gpt.py submissions/2026-03-22_11L_EMA_GPTQ-lite_recipe $STEPS \
  "${FULL[@]}" --env WARMDOWN_ITERS=$((STEPS / 2))
