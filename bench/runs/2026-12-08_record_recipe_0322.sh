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
PROGRAMS=${PROGRAMS:-reference,golfc}
NAME=record_recipe_0322_${PROGRAMS/,/_}
TIMEOUT=${TIMEOUT:-290}
STEPS=${1:-100}
RECORD=.devdata/records/2026-03-22_11L/train_gpt.py
[ -f "$RECORD" ] || { echo "no $RECORD: copy the record's train_gpt.py there (openai/parameter-golf)"; exit 1; }
python3 bench/parity.py --build submissions/2026-03-22_11L_EMA_GPTQ-lite_recipe --reference $RECORD "${FULL[@]}" \
  --steps $STEPS --log-every 10 --programs $PROGRAMS --no-weights --timeout $TIMEOUT \
  --env WARMDOWN_ITERS=$((STEPS / 2)) --reference-env "PYTHONPATH=$PWD/bench/flash_attn_shim:$PYTHONPATH" \
  --work /tmp/record0322 --json $OUT/$NAME.json > $OUT/$NAME.txt 2>&1
echo "parity exit code $?"
(cd /tmp/record0322 && tar czf $OUT/${NAME}_consoles.tar.gz */console*.log)
tail -40 $OUT/$NAME.txt
