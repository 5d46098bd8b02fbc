#!/usr/bin/env bash
# Set up golfc in ./.venv on a fresh Linux machine (Python >= 3.10 with venv). Safe to run again.
# - reuses a torch that the system Python already has (venv with --system-site-packages);
# - otherwise installs PyTorch (TORCH_SPEC, default torch==2.13.0) before golfc itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing $TORCH_SPEC" >&2
  .venv/bin/python -m pip install -q "$TORCH_SPEC"
fi
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready (.venv/bin/golfc, .venv/bin/python -m pytest)" >&2
