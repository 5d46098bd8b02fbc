# Sourced by the 2026-11-22 scripts in bench/runs/: unbuffered Python, the stand-in data and build carried in .devdata
# (`carry: [".devdata"]`), the data variables of the training script, and the GPU named in the output.
export PYTHONUNBUFFERED=1
ROOT=$(pwd)
DATA="$ROOT/.devdata/data"
BUILD="$ROOT/.devdata/build"
export DATA_PATH="$DATA/datasets/fineweb10B_sp1024" TOKENIZER_PATH="$DATA/tokenizers/fineweb_1024_bpe.model" VOCAB_SIZE=1024
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
