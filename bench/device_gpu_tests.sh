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
python3 -m pytest tests/gpu -o addopts="--import-mode=importlib" -v -p no:cacheprovider 2>&1 | tee "${OUT:-/tmp}/gpu_tests.log"
