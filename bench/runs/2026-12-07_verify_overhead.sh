#!/usr/bin/env bash
# 2026-12-07, one GPU: what `golfc verify` adds to the runs it makes. The baseline build (.devdata/build) on the
# stand-in data at a 45 s training cap: one bare torchrun run (after a compile-only run when the inductor cache is
# empty, so that it is as warm as the seeds), then `golfc verify --seeds 1337,42,2024 --nproc 1 --checks all` of the
# same program. Reported (verify_overhead.json): the bare run's wall time and ms/step; each verify seed's wall time
# and ms/step (the ledger's audit hook is on in those runs); the time verify spends outside the seed runs (probes,
# val-independence, report); and the total overhead against three bare runs. Goal (issue 14): probes + ledgers <= 5%
# of a run.
# Needs typer, rich and scipy importable on the device (matplotlib optional: without it, no PNG and a warning).
# Too long for one call? `bash THIS bare` then `bash THIS verify` on the same warm machine (the cache carries over).
# A second argument names another build folder (e.g. .devdata/build_slot_window_sliding); each build's files go to
# $OUT/<its folder name>/: six or seven files, and the device returns eight a call, so one build per call.
source bench/runs/parity_env.sh
PART=${1:-all}
BUILD=${2:-.devdata/build}
OUT=$OUT/$(basename "$BUILD")
mkdir -p "$OUT"
python3 -c "import typer, rich, scipy" || { echo "needs typer, rich and scipy (carry their wheels in .whl)"; exit 1; }
CAP=${CAP:-45}
# the runs go into a new network namespace (unshare -rn) where the device allows it; ISOLATE=--no-isolate-network
# if CUDA or NCCL misbehave there (the report says which was used)
ISOLATE=${ISOLATE:---isolate-network}
DATA=.devdata/data/datasets/fineweb10B_sp1024
TOK=.devdata/data/tokenizers/fineweb_1024_bpe.model
RUN_ENV=(MAX_WALLCLOCK_SECONDS=$CAP DATA_PATH=$PWD/$DATA TOKENIZER_PATH=$PWD/$TOK VOCAB_SIZE=1024)
# bare_run NAME=VALUE...: the build under torchrun without verify, seed 1337, RUN_ENV then the given settings
bare_run() {
  (cd /tmp/bare && env "${RUN_ENV[@]}" SEED=1337 "$@" python3 -m torch.distributed.run --standalone \
     --nproc_per_node=1 "$OLDPWD/$BUILD/train_gpt.py")
}
if [ "$PART" = all ] || [ "$PART" = bare ]; then
  rm -rf /tmp/bare && mkdir -p /tmp/bare
  # on a fresh machine the inductor cache is empty: a first run at a 1 s cap compiles (about a minute) so that the
  # timed bare run is as warm as the verify seeds (2026-12-08: a cold bare run took 115 s against the seeds' 60-70 s,
  # and the wall-time overhead figures meant nothing)
  if [ -z "$(ls -A "$TORCHINDUCTOR_CACHE_DIR" 2>/dev/null)" ]; then
    bare_run MAX_WALLCLOCK_SECONDS=1 RUN_ID=warm > /tmp/bare/warm.txt 2>&1
    echo "inductor cache warmed: exit $?"
  fi
  start=$(date +%s.%N)
  bare_run RUN_ID=bare > $OUT/bare.txt 2>&1
  end=$(date +%s.%N)
  echo "{\"bare_wall_s\": $(python3 -c "print(round($end - $start, 3))")}" > $OUT/bare.json
  tail -6 $OUT/bare.txt; cat $OUT/bare.json
fi
if [ "$PART" = all ] || [ "$PART" = verify ]; then
  rm -rf /tmp/vbuild && cp -r "$BUILD" /tmp/vbuild
  start=$(date +%s.%N)
  python3 -m golfc.cli verify /tmp/vbuild --seeds 1337,42,2024 --nproc 1 --checks all --json $ISOLATE \
    $(printf -- "--env %s " "${RUN_ENV[@]}") > $OUT/verify_report.json 2> $OUT/verify_stderr.txt
  echo "verify exit code $?"
  end=$(date +%s.%N)
  # the device returns about eight files a call: keep the report, the curves and one seed's console here
  cp /tmp/vbuild/verify/report.md $OUT/ 2>/dev/null; cp /tmp/vbuild/verify/loss_curves.png $OUT/ 2>/dev/null
  cp /tmp/vbuild/verify/seed_1337/console.txt $OUT/verify_seed1337.txt 2>/dev/null
  [ -s $OUT/verify_stderr.txt ] || rm -f $OUT/verify_stderr.txt
  OUT="$OUT" python3 - "$start" "$end" <<'PY'
import json, os, re, sys
out = os.environ["OUT"]
start, end = map(float, sys.argv[1:3])
report = json.load(open(f"{out}/verify_report.json"))
bare = json.load(open(f"{out}/bare.json"))["bare_wall_s"] if os.path.exists(f"{out}/bare.json") else None
def step_avg(path):
    found = re.findall(r"step_avg:([\d.]+)ms", open(path).read()) if os.path.exists(path) else []
    return float(found[-1]) if found else None
seeds = {s["seed"]: {"wall_s": s["wall_s"], "status": s["status"], "step_avg_ms":
                     step_avg(f"/tmp/vbuild/verify/seed_{s['seed']}/console.txt")} for s in report["seeds"]}
runs = sum(s["wall_s"] for s in seeds.values())
result = {"bare_wall_s": bare, "bare_step_avg_ms": step_avg(f"{out}/bare.txt"), "verify_total_s": round(end - start, 3),
          "verify_seed_runs_s": round(runs, 3), "verify_outside_runs_s": round(end - start - runs, 3),
          "seeds": seeds, "verdict": report["verdict"],
          "checks": [(c["name"], c["rule"], c["verdict"]) for c in report["checks"]]}
if bare:
    result["overhead_vs_3_bare_runs"] = round((end - start) / (3 * bare) - 1, 4)
    result["outside_runs_vs_one_run"] = round((end - start - runs) / bare, 4)
result["own_seconds"] = report.get("own_seconds")
json.dump(result, open(f"{out}/verify_overhead.json", "w"), indent=2)
if os.path.exists(f"{out}/bare.json"):
    os.remove(f"{out}/bare.json")  # folded into verify_overhead.json
print(json.dumps(result, indent=2))
PY
fi
