"""Where challenge data lives under a data root, as the training script and the official download expect it."""

from __future__ import annotations

from pathlib import Path

DATASETS_DIR = "datasets"
TOKENIZERS_DIR = "tokenizers"
ROOT_OPTION = "-o"  # the option of `golfc data build` / `golfc data fineweb` that names the data root


def dataset_name(vocab_size: int) -> str:
    return f"fineweb10B_sp{vocab_size}"


def tokenizer_name(vocab_size: int) -> str:
    return f"fineweb_{vocab_size}_bpe"


def dataset_dir(root: Path, vocab_size: int) -> Path:
    """``ROOT/datasets/fineweb10B_sp{N}``: the training script's ``DATA_PATH``."""
    return root / DATASETS_DIR / dataset_name(vocab_size)


def tokenizer_model_path(root: Path, vocab_size: int) -> Path:
    """``ROOT/tokenizers/fineweb_{N}_bpe.model``: the training script's ``TOKENIZER_PATH``."""
    return root / TOKENIZERS_DIR / f"{tokenizer_name(vocab_size)}.model"


def tokenizer_vocab_path(root: Path, vocab_size: int) -> Path:
    return root / TOKENIZERS_DIR / f"{tokenizer_name(vocab_size)}.vocab"


def training_env(data_path: Path, tokenizer_path: Path, vocab_size: int) -> dict[str, str]:
    """The environment variables that point the training script at a dataset."""
    return {"DATA_PATH": str(data_path), "TOKENIZER_PATH": str(tokenizer_path), "VOCAB_SIZE": str(vocab_size)}
