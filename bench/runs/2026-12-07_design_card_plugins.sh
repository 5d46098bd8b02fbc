#!/usr/bin/env bash
# 2026-12-07, one GPU (issue 13): the design card's plugins at equal steps on the stand-in data — the golfc
# baseline, each plugin alone (window, xsa, bigram_hash, sliding_window, ttt, slot on sliding windows) and the
# stacks slot,window (with sliding_window: SLOT needs context) and window,xsa,bigram_hash,sliding_window,ttt — then
# window against full attention at TRAIN_SEQ_LEN 2048, 6144, 8192.
# Usage: bash bench/runs/2026-12-07_design_card_plugins.sh [STEPS] [SEQ_STEPS] [extra args for bench/design_card.py]
#   (defaults 120 and 15; e.g. `... 120 15 --programs "baseline window ttt_lora"` for a subset).
# Carry .devdata (the stand-in data) and .whl (python-minifier); results in $OUT: design_card.json, design_card.txt,
# each program's console in $OUT/consoles.tar.gz. One program failing or timing out leaves the others' rows.
# Budget: ~9 compiles (the inductor cache is shared: the evaluation plugins reuse the baseline's model graph) +
# 9 x 120 steps at ~0.25 s + evaluations; about 8-10 minutes on an H100/H200; the sequence sweep adds 6 short runs.
source bench/runs/parity_env.sh
STEPS=${1:-120}
SEQ_STEPS=${2:-15}
shift $(( $# > 2 ? 2 : $# ))
python3 -c "import flash_attn_interface" 2>/dev/null && echo "flash_attn_interface (FA3): importable" \
  || echo "flash_attn_interface (FA3): not importable; window uses FlexAttention when compiled"
# equal steps: the warmdown scaled to the run (the last half of STEPS, as the records' ~3,500 of ~7,000); the
# default 1,200 steps would keep a 120-step run under 0.1x of its learning rate and a 300-step one under 0.25x.
# With --cap the program's default stays (its warmdown is timed by the clock): pass --env WARMDOWN_ITERS=... for the
# steps the cap allows (about 180 s / 0.27 s = 660 on one H100). An --env given here wins either way.
SCHEDULE=(--env WARMDOWN_ITERS=${WARMDOWN:-$(( STEPS / 2 ))})
case " $* " in *" --cap "*) SCHEDULE=() ;; esac
python3 bench/design_card.py "${FULL[@]}" --steps "$STEPS" --seq-steps "$SEQ_STEPS" --work /tmp/design_card \
  --json "$OUT/design_card.json" "${SCHEDULE[@]}" "$@" > "$OUT/design_card.txt" 2>&1
status=$?
tail -40 "$OUT/design_card.txt"
pack_consoles "$OUT/consoles.tar.gz" /tmp/design_card  # one archive: the device returns at most eight files a call
exit $status
