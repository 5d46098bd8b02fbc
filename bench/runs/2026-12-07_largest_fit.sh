#!/usr/bin/env bash
# 2026-12-07, one GPU (issue 16): the largest model that fits 16,000,000 bytes with the best measured scheme, and
# its score at equal wall clock against the baseline. Run after bench/runs/2026-12-07_artifact_schemes.sh (its JSON,
# copied into the tree, is the input). bench/largest_fit.py prices every (NUM_LAYERS, MLP_MULT) by the best
# scheme's bytes per parameter and prints a design_card.py program; then the golfc baseline and that program
# train under the same wall-clock cap (default 120 s), same data and seed, one after the other.
# Usage: bash bench/runs/2026-12-07_largest_fit.sh [SCHEMES_JSON] [CAP_SECONDS]
source bench/runs/parity_env.sh
SCHEMES=${1:-bench/results/2026-12-07_artifact_schemes_h100.json}
CAP=${2:-120}
python3 bench/largest_fit.py "$SCHEMES" --json $OUT/largest_fit.json > $OUT/largest_fit.txt 2>&1 || { cat $OUT/largest_fit.txt; exit 1; }
tail -3 $OUT/largest_fit.txt
P=$(python3 -c "import json; print(json.load(open('$OUT/largest_fit.json'))['program'])")
timeout 520 python3 bench/design_card.py "${FULL[@]}" --cap "$CAP" --steps 20000 --seq-lens "" --programs "baseline $P" \
  --work /tmp/fit --json $OUT/fit_equal_clock.json --timeout 300 > $OUT/fit_equal_clock.txt 2>&1
tail -4 $OUT/fit_equal_clock.txt
pack_consoles $OUT/fit_consoles.tar.gz /tmp/fit  # one archive: the device returns at most eight files a call
