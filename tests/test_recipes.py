"""The record recipes under submissions/ (folders named *_recipe): the build command in each README is the one its
golfc.lock records, and each recipe trains, exports and scores at a tiny size on the CPU (its plugins together)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(ROOT.joinpath("submissions").glob("*_recipe"))
# a tiny CPU shape: each name replaces the value the recipe pins (names it does not pin are left out), plus the
# quantizer's calibration and size knobs; the layer lists scaled down to three layers. 128-token sequences: the
# validation documents are cut to 480 tokens, so a 128-target TTT_LORA_CHUNK gives each document four chunks and
# its LoRA adapters learn between them (at 512 every document was one chunk, and nothing was adapted)
TINY_SHAPE = {"NUM_LAYERS": "3", "TRAIN_SEQ_LEN": "128", "TRAIN_BATCH_TOKENS": "2048", "EVAL_STRIDE": "64",
              "VE_LAYERS": "1,2", "VE_DIM": "8", "BIGRAM_VOCAB_SIZE": "64", "BIGRAM_DIM": "8", "LOOP_START": "1",
              "LOOP_END": "1", "PARALLEL_START_LAYER": "2", "TTT_LORA_CHUNK": "128", "TTT_LORA_RANK": "2",
              "GPTQ_CALIB_BATCHES": "2", "QUANT_KEEP_FLOAT_NUMEL": "1024",
              "MUON_MOMENTUM_WARMUP_STEPS": "2", "WARMDOWN_ITERS": "2", "ENABLE_LOOPING_AT": "0.5"}

# and what neither recipe pins: a narrow model (the default width, 512, made these runs the slowest of the suite;
# head_dim 32 keeps ROPE_DIMS=16 partial), and LoRA TTT batches of 16 documents (the default 64 ran one batch of 64
# rows, 30 of them padding, for the tiny set's 34 validation documents; 16 runs three batches, the last padded).
# These runs are slow for their size because the program trains and evaluates under bf16 autocast on the CPU too
# (as on the GPU), and an AVX2-only CPU has no fast bf16 matrix product: PyTorch's fallback runs a bf16 mm 6-20x
# slower than the fp32 one, its SDPA backward 5x (bench/RESULTS.md, 2026-12-07 fourth session)
TINY_UNPINNED = {"MODEL_DIM": "64", "NUM_HEADS": "2", "TTT_LORA_BATCH": "16"}


def readme_command(folder: Path) -> tuple[list[str], dict[str, str]]:
    """(plugins, --set values) of the `golfc build` command in the folder's README."""
    block = re.search(r"```bash\n(golfc build .*?)```", (folder / "README.md").read_text(), re.S)
    assert block, f"{folder.name}/README.md has no golfc build command"
    words = shlex.split(block[1].replace("\\\n", " "))
    plugins = words[words.index("--plugins") + 1].split(",")
    sets = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--set")
    assert words[words.index("-o") + 1] == f"submissions/{folder.name}"
    return plugins, sets


def test_there_are_two_recipes():
    assert [p.name for p in RECIPES] == ["2026-03-22_11L_EMA_GPTQ-lite_recipe", "2026-04-27_PR1855_architecture_recipe"]


@pytest.mark.parametrize("folder", RECIPES, ids=lambda p: p.name)
def test_the_readme_command_is_the_locked_recipe(folder):
    lock = json.loads((folder / "golfc.lock").read_text())
    plugins, sets = readme_command(folder)
    assert plugins == lock["plugins"]
    assert sets == {k: str(v) for k, v in lock["overrides"].items()}


@pytest.mark.slow
@pytest.mark.parametrize("folder", RECIPES, ids=lambda p: p.name)
def test_the_recipe_trains_exports_and_scores_at_a_tiny_size(folder, tmp_path, tiny_dataset):
    from golfc.testing import run_emitted

    lock = json.loads((folder / "golfc.lock").read_text())
    env = {k: v for k, v in TINY_SHAPE.items() if k in lock["overrides"] or k.startswith(("QUANT_", "GPTQ_"))}
    env.update(TINY_UNPINNED)
    run = run_emitted(tuple(lock["plugins"]), tiny_dataset, tmp_path, overrides=lock["overrides"],
                      env={**env, "VOCAB_SIZE": str(tiny_dataset.vocab_size)}, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.final_bpb is not None and 0 < run.final_bpb < 20
