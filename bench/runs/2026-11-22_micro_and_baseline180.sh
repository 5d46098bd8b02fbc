#!/usr/bin/env bash
# Device call 1 (one H100): micro-benchmarks, then the golfc baseline build at the benchmark setting
# (MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0, everything else default), then a short flash-backend
# ablation. Expects the stand-in data (vocab 1024) in .devdata/data and the build in .devdata/build.
set -u
source "$(dirname "$0")/../device_env.sh"
python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"

timeout 150 python3 bench/micro.py "$BUILD/train_gpt.src.py" --json "$OUT/micro.json" > "$OUT/micro.log" 2>&1
tail -n 12 "$OUT/micro.log"
BACKEND=$(python3 - "$OUT/micro.json" <<'PY'
import json, sys
try:
    att = json.load(open(sys.argv[1]))["attention"]
except Exception:
    print("auto"); raise SystemExit
ok = {k: v for k, v in att.items() if v.get("compiles_fullgraph") is True and k.endswith("/native") and k.split("/")[0] in ("cudnn", "flash")}
print(min(ok, key=lambda k: ok[k]["fwd_bwd_ms"]).split("/")[0] if ok else "auto")
PY
)
echo "chosen SDPA_BACKEND=$BACKEND"

cd "$BUILD"
SDPA_BACKEND=$BACKEND MAX_WALLCLOCK_SECONDS=180 VAL_LOSS_EVERY=0 RUN_ID=golfc_baseline_h100 \
  timeout 330 python3 train_gpt.py > "$OUT/golfc_baseline_h100.log" 2>&1
grep -E "^(model_params|world_size|step:(100|200|300|400|500|600)/|step:.*val_bpb|stopping_early|peak memory|Serialized|Code size|Total submission|final_)" "$OUT/golfc_baseline_h100.log" | tail -n 20
cp logs/golfc_baseline_h100.txt "$OUT/" 2>/dev/null

SDPA_BACKEND=flash MAX_WALLCLOCK_SECONDS=45 VAL_LOSS_EVERY=0 RUN_ID=golfc_flash_h100 \
  timeout 150 python3 train_gpt.py > "$OUT/golfc_flash_h100.log" 2>&1
grep -E "^(step:.*val_bpb|stopping_early|final_int8_zlib_roundtrip )" "$OUT/golfc_flash_h100.log" | tail -n 4
