# Sourced by the bench/runs/*parity*.sh device scripts: the device's Python with golfc from the checkout
# (python-minifier carried as a wheel in .whl), the carried stand-in data (.devdata/data, vocab 1024), the tiny
# corpus (.devdata/tiny, vocab 384), the reference script copied to .devdata/reference (../shared stays here).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/golfc_path && ln -sfn "$PWD/plugins" /tmp/golfc_path/golfc_plugins
export PYTHONPATH="$PWD:/tmp/golfc_path:/tmp/site"
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor_cache
REF=.devdata/reference/train_gpt.py
FULL=(--data "$PWD/.devdata/data/datasets/fineweb10B_sp1024" --tokenizer "$PWD/.devdata/data/tokenizers/fineweb_1024_bpe.model" --vocab 1024)
TINY=(--data "$PWD/.devdata/tiny/datasets/fineweb10B_sp384" --tokenizer "$PWD/.devdata/tiny/tokenizers/fineweb_384_bpe.model" --vocab 384)
# the reduced shape of tests/gpu/test_reference_parity.py
REDUCED=(--steps 20 --log-every 1 --env NUM_LAYERS=2 --env MODEL_DIM=128 --env NUM_HEADS=2 --env NUM_KV_HEADS=1
         --env TRAIN_SEQ_LEN=1024 --env TRAIN_BATCH_TOKENS=65536 --env VAL_BATCH_SIZE=65536 --env WARMDOWN_ITERS=0
         --env WARMUP_STEPS=2)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__)"

# pack_consoles ARCHIVE ROOT: every ROOT/*/console*.txt and ROOT/*/*/console*.txt (console.txt and the timed
# console_timed.txt) into one tar.gz named by folder (the device returns at most eight files a call, so per-program
# consoles go back as one archive)
pack_consoles() {
  local files
  files=$(cd "$2" 2>/dev/null && find . -mindepth 2 -maxdepth 3 -name 'console*.txt')
  [ -n "$files" ] && tar czf "$1" -C "$2" $files
}

# record_pair TAG RECORD BUILD STEPS [parity.py args...]: a record's own train_gpt.py (the reference, with the FA3
# stand-in bench/flash_attn_shim first on its PYTHONPATH) and its golfc recipe BUILD side by side through
# bench/parity.py, no tensor comparison (records name their weights their own way). PROGRAMS=reference or golfc runs
# one (a pair that outruns a call; `python bench/parity.py merge A.json B.json` joins them), TIMEOUT seconds each
# (default 290). Files: $OUT/record_recipe_TAG_<programs>.{json,txt} and the consoles as one archive.
record_pair() {
  local tag=$1 record=$2 build=$3 steps=$4 programs=${PROGRAMS:-reference,golfc}
  shift 4
  local name=record_recipe_${tag}_${programs/,/_}
  [ -f "$record" ] || { echo "no $record: copy the record's train_gpt.py there (openai/parameter-golf)"; return 1; }
  python3 bench/parity.py --build "$build" --reference "$record" --steps "$steps" --log-every 10 \
    --programs "$programs" --no-weights --timeout "${TIMEOUT:-290}" --work "/tmp/record$tag" \
    --reference-env "PYTHONPATH=$PWD/bench/flash_attn_shim:$PYTHONPATH" --json "$OUT/$name.json" "$@" \
    > "$OUT/$name.txt" 2>&1
  echo "parity exit code $?"
  (cd "/tmp/record$tag" && tar czf "$OUT/${name}_consoles.tar.gz" */console*.log)
  tail -40 "$OUT/$name.txt"
}
