"""The kitchen sink: every plugin of the catalogue that can go with the others, built together, trains, exports
and scores a tiny model on the CPU. The set is discovered from the catalogue, not listed: a plugin is left out only
when golfc refuses it next to those already in (a declared conflict, a slot two plugins fill, a recipe rule), and
the test says which and why."""

from __future__ import annotations

import pytest

from golfc.engine import resolve
from golfc.errors import GolfcError
from golfc.plugins import DEFAULT_PLUGINS, discover, plugin_info
from golfc.recipe import Recipe
from golfc.testing import run_emitted

# Small values for the knobs of the catalogue's plugins; a knob of a plugin that is not in the sink is ignored.
SINK_ENV = {
    "NUM_LAYERS": "3", "WINDOW_SIZE": "16", "WINDOW_ATTN_LAYERS": "1", "XSA_LAST_N": "2",
    "BIGRAM_VOCAB_SIZE": "128", "BIGRAM_DIM": "16", "EVAL_STRIDE": "32", "EVAL_BATCH_SEQS": "8",
    "TTT_CHUNK_TOKENS": "4096", "TTT_EPOCHS": "1", "TTT_BATCH_SEQS": "8", "SLOT_STEPS": "1",
    "MLP_MULT": "3", "EMA_DECAY": "0.9", "SWA_EVERY": "1", "SWA_START_FRAC": "0.9", "WARMDOWN_FRAC": "0.5",
    "MIN_LR": "0.1", "LOADER_MIX_START": "2", "LOADER_MIX_END": "4", "SMEAR_GATE_WINDOW": "8",
    "VAL_LOSS_EVERY": "2", "ROPE_DIMS": "8", "VE_DIM": "8", "VE_LAYERS": "1,2", "PARALLEL_START_LAYER": "2",
    "NUM_LOOPS": "1", "LOOP_START": "1", "LOOP_END": "1", "WD_TAPER_FINAL_MULT": "0.5",
}
# Plugins whose program needs a module a CPU machine does not have: they stop at start-up without it (their own
# tests run them with a stand-in), so the sink leaves them out, saying why.
NEEDS_GPU_MODULE = {"flash_attn": "needs flash_attn_interface (FA3) or flash_attn.cute (FA4), CUDA-only kernels"}


def kitchen_sink() -> tuple[tuple[str, ...], dict[str, str]]:
    """Greedily, in name order: every non-default plugin that golfc accepts next to those already chosen;
    returns the chosen names and, for each one left out, golfc's reason."""
    catalog = discover()
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for name in sorted(n for n in catalog if n not in DEFAULT_PLUGINS):
        if name in NEEDS_GPU_MODULE:
            left_out[name] = NEEDS_GPU_MODULE[name]
            continue
        declared = set(plugin_info(catalog[name].load()).conflicts)
        clash = [c for c in chosen if c in declared or name in plugin_info(catalog[c].load()).conflicts]
        if clash:
            left_out[name] = f"declared conflict with {', '.join(clash)}"
            continue
        try:
            resolve(Recipe(plugins=(*chosen, name)))
        except GolfcError as exc:
            left_out[name] = str(exc)
            continue
        chosen.append(name)
    return tuple(chosen), left_out


def test_the_kitchen_sink_holds_every_plugin_not_refused_next_to_it():
    chosen, left_out = kitchen_sink()
    catalog = {n for n in discover() if n not in DEFAULT_PLUGINS}
    assert set(chosen) | set(left_out) == catalog
    # one of each conflicting pair (name order picks ema over swa, fused_mlp over leaky_relu2, slot over ttt)
    assert {"fused_mlp", "fused_ce", "smear_gate", "coprime_loader", "warmdown_frac", "ema", "xsa"} <= set(chosen)
    assert ("window" in chosen) != ("varlen" in chosen)  # one attention kernel: name order picks window
    assert {"partial_rope", "ln_scale"} <= set(chosen)  # yarn_rope: refused next to ntk_rope (one slot)
    assert {"value_embed", "unet_gated_skips", "parallel_residuals", "depth_recurrence"} <= set(chosen)
    assert {"normuon", "muon_eq_r", "polar_ns", "weight_decay", "parallel_muon"} <= set(chosen)  # one Muon, composed
    for name, reason in left_out.items():  # each one is refused for a reason that names a chosen plugin
        assert name in NEEDS_GPU_MODULE or any(c in reason for c in chosen), (name, reason)
    resolve(Recipe(plugins=chosen))  # and the chosen set builds as a whole


@pytest.mark.slow
def test_the_kitchen_sink_trains_exports_and_scores_on_cpu(tmp_path, tiny_dataset):
    chosen, _ = kitchen_sink()
    run = run_emitted(chosen, tiny_dataset, tmp_path, env=SINK_ENV)
    assert run.returncode == 0, f"{chosen}: {run.stderr[-3000:]}"
    assert run.final_bpb is not None and run.final_bpb > 0, run.stdout[-2000:]
    source = (tmp_path / "train_gpt.src.py").read_text()
    for name in chosen:  # its section, its wiring, or (a knob-only plugin: partial_rope) its hyperparameters
        assert any(mark in source for mark in (f"<golfc:plugins/{name}>", f"plugins/{name}:",
                                                f"# -- plugins/{name}\n")), name
