#!/usr/bin/env bash
# The GPU parity tests (tests/gpu) on the device machine. Its Python has torch, pytest, pluggy, typer, rich and
# sentencepiece but not python-minifier: carry the wheel in .whl (see bench/RESULTS.md). golfc is used from
# the checkout: the repo root and a `golfc_plugins` link to plugins/ go on PYTHONPATH (what setup.py maps).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/golfc_path && ln -sfn "$PWD/plugins" /tmp/golfc_path/golfc_plugins
export PYTHONPATH="$PWD:/tmp/golfc_path:/tmp/site"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__)"
set -o pipefail
# Kernel parity files first (seconds each), then the ones that train or run whole programs, so a call that runs
# out of time still reports the cheap ones. Pass test paths to run a subset.
if [ $# -eq 0 ]; then
  set -- tests/gpu/test_fused_ce_parity.py tests/gpu/test_fused_mlp_parity.py tests/gpu/test_window_kernels.py \
    tests/gpu/test_varlen_kernels.py tests/gpu/test_flash_attn_parity.py tests/gpu/test_cuda_parity.py \
    tests/gpu/test_probe_cuda.py tests/gpu/test_wiring_plugins.py tests/gpu/test_optimizer_plugins_gpu.py \
    tests/gpu/test_artifact_gpu.py tests/gpu/test_run_phases.py tests/gpu/test_verify_gpu.py \
    tests/gpu/test_reference_parity.py
fi
python3 -m pytest "$@" --durations=0 -o addopts="--import-mode=importlib" -v -p no:cacheprovider 2>&1 | tee "${OUT:-/tmp}/gpu_tests.log"
