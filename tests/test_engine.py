"""Plugin discovery, slot resolution, cardinality and hyperparameter errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from golfc.engine import resolve
from golfc.errors import HParamError, PluginLoadError, RecipeError, SlotConflictError, UnknownPluginError
from golfc.hparams import HParams, parse_set_options
from golfc.plugins import DEFAULT_PLUGINS, discover
from golfc.recipe import Recipe
from golfc.testing import slot_plugin

MLP_RUNTIME = "import torch\n\nclass {cls}(torch.nn.Module):\n    pass\n"


def test_baseline_recipe_uses_every_default_plugin():
    resolution = resolve(Recipe())
    assert resolution.active == ("core", *DEFAULT_PLUGINS)
    chosen = {slot: [b.plugin for b in bindings] for slot, bindings in resolution.bindings.items()}
    assert chosen["mlp"] == ["relu2_mlp"]
    assert chosen["optimizer"] == ["muon"]
    assert chosen["weight_averaging"] == [] and chosen["attention_post"] == []


def test_requested_plugin_replaces_the_default_of_a_single_slot(plugin_dir):
    plugin_dir.add(
        "wide_mlp", slot_plugin("golfc_mlp", "wide_mlp_runtime", "WideMLP"), MLP_RUNTIME.format(cls="WideMLP")
    )
    resolution = resolve(Recipe(plugins=("wide_mlp",)), plugins_dir=plugin_dir.root)
    (binding,) = resolution.bindings["mlp"]
    assert (binding.plugin, binding.symbols) == ("wide_mlp", {"MLP": "WideMLP"})
    assert resolution.active[-1] == "wide_mlp"


def test_two_plugins_claiming_a_single_slot_is_an_error_naming_both(plugin_dir):
    plugin_dir.add("mlp_a", slot_plugin("golfc_mlp", "mlp_a_runtime", "MlpA"), MLP_RUNTIME.format(cls="MlpA"))
    plugin_dir.add("mlp_b", slot_plugin("golfc_mlp", "mlp_b_runtime", "MlpB"), MLP_RUNTIME.format(cls="MlpB"))
    with pytest.raises(SlotConflictError, match=r"mlp_a and mlp_b both fill slot 'mlp'"):
        resolve(Recipe(plugins=("mlp_a", "mlp_b")), plugins_dir=plugin_dir.root)


def test_two_claimants_of_an_at_most_one_slot_conflict(plugin_dir):
    for name in ("avg_a", "avg_b"):  # loose names: the catalogue has its own ema and swa
        plugin_dir.add(name, slot_plugin("golfc_weight_averaging", f"{name}_runtime", "Avg"), "class Avg: pass\n")
    with pytest.raises(SlotConflictError, match="avg_a and avg_b"):
        resolve(Recipe(plugins=("avg_a", "avg_b")), plugins_dir=plugin_dir.root)


def test_many_slot_orders_by_impl_order_then_name(plugin_dir):
    for name, order in (("post_b", 0), ("post_a", 0), ("post_first", -5)):
        build = f"""
from golfc import Impl, hookimpl

@hookimpl
def golfc_attention_post():
    return Impl(module="{name}_runtime", symbols="fn_{name}", order={order})
"""
        plugin_dir.add(name, build, f"def fn_{name}(y, v, layer, h):\n    return y\n")
    resolution = resolve(Recipe(plugins=("post_b", "post_a", "post_first")), plugins_dir=plugin_dir.root)
    assert [b.plugin for b in resolution.bindings["attention_post"]] == ["post_first", "post_a", "post_b"]


def test_unknown_plugin_suggests_close_matches():
    with pytest.raises(UnknownPluginError, match=r"unknown plugin 'muom'; did you mean muon"):
        resolve(Recipe(plugins=("muom",)))


def test_declared_conflicts_are_errors(plugin_dir):
    build = """
from golfc import PluginInfo
GOLFC_PLUGIN = PluginInfo(summary="x", conflicts=("muon",))
"""
    plugin_dir.add("anti_muon", build)
    with pytest.raises(SlotConflictError, match="anti_muon cannot be combined with muon"):
        resolve(Recipe(plugins=("anti_muon",)), plugins_dir=plugin_dir.root)


def test_hook_typo_is_rejected_with_a_suggestion(plugin_dir):
    plugin_dir.add("typo", "from golfc import hookimpl\n\n@hookimpl\ndef golfc_mpl():\n    return None\n")
    with pytest.raises(PluginLoadError, match="golfc_mpl; did you mean golfc_mlp"):
        resolve(Recipe(plugins=("typo",)), plugins_dir=plugin_dir.root)


def test_hook_without_prefix_is_rejected(plugin_dir):
    plugin_dir.add("noprefix", "from golfc import hookimpl\n\n@hookimpl\ndef mlp():\n    return None\n")
    with pytest.raises(PluginLoadError, match="must start with 'golfc_'"):
        resolve(Recipe(plugins=("noprefix",)), plugins_dir=plugin_dir.root)


def test_wrong_return_type_is_reported(plugin_dir):
    plugin_dir.add("bad", "from golfc import hookimpl\n\n@hookimpl\ndef golfc_mlp():\n    return 'MLP'\n")
    with pytest.raises(PluginLoadError, match=r"returned str, expected golfc\.Impl"):
        resolve(Recipe(plugins=("bad",)), plugins_dir=plugin_dir.root)


def test_impl_must_bind_every_global_of_a_multi_global_slot(plugin_dir):
    plugin_dir.add("halfq", slot_plugin("golfc_quantizer", "halfq_runtime", {"quantize_model": "q"}))
    with pytest.raises(PluginLoadError, match="binds exactly"):
        resolve(Recipe(plugins=("halfq",)), plugins_dir=plugin_dir.root)


def test_plugin_import_failure_is_one_line(plugin_dir):
    plugin_dir.add("broken", "import definitely_not_a_module_xyz\n")
    with pytest.raises(PluginLoadError, match=r"plugin broken \(plugins-dir .*\) failed to import"):
        resolve(Recipe(plugins=("broken",)), plugins_dir=plugin_dir.root)


def test_plugins_dir_must_exist(tmp_path):
    with pytest.raises(PluginLoadError, match="expected a directory"):
        discover(tmp_path / "missing")


def test_plugins_dir_may_not_shadow_a_builtin(plugin_dir):
    plugin_dir.add("muon", "GOLFC = 1\n")
    with pytest.raises(PluginLoadError, match="provided by both builtin and plugins-dir"):
        discover(plugin_dir.root)


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    """A third-party package announces plugins in the entry-point group golfc.plugins."""
    site = tmp_path / "site"
    (site / "thirdparty_golf").mkdir(parents=True)
    (site / "thirdparty_golf" / "__init__.py").write_text(
        "from golfc import HParams, PluginInfo, hookimpl\n"
        "GOLFC_PLUGIN = PluginInfo(summary='third-party knob')\n"
        "@hookimpl\ndef golfc_add_hparams(hp: HParams):\n    hp.int('THIRD_PARTY_KNOB', 3, 'a knob')\n"
    )
    dist = site / "thirdparty_golf-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-golf\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[golfc.plugins]\nthirdparty = thirdparty_golf\n")
    monkeypatch.syspath_prepend(str(site))
    catalog = discover()
    assert catalog["thirdparty"].origin == "entry point thirdparty-golf"
    resolution = resolve(Recipe(plugins=("thirdparty",)))
    assert resolution.hparams["THIRD_PARTY_KNOB"].owner == "thirdparty"
    sys.modules.pop("thirdparty_golf", None)


def test_set_overrides_change_defaults_with_type_checks():
    resolution = resolve(Recipe(overrides={"NUM_LAYERS": "11", "MATRIX_LR": "0.025", "TIE_EMBEDDINGS": "false"}))
    assert resolution.hparams["NUM_LAYERS"].default == 11
    assert resolution.hparams["MATRIX_LR"].default == 0.025
    assert resolution.hparams["TIE_EMBEDDINGS"].default is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"NUM_LAYER": "3"},
            r"--set NUM_LAYER: no active plugin declares this hyperparameter; did you mean NUM_LAYERS",
        ),
        ({"NUM_LAYERS": "three"}, r"--set NUM_LAYERS=three: expected an integer"),
        ({"MATRIX_LR": "fast"}, r"--set MATRIX_LR=fast: expected a number"),
        ({"TIE_EMBEDDINGS": "maybe"}, r"expected 0/1 or true/false"),
        ({"SDPA_BACKEND": "flsh"}, r"--set SDPA_BACKEND=flsh: expected one of auto, cudnn, flash, efficient, math"),
        ({"DEVICE": "gpu"}, r"--set DEVICE=gpu: expected one of auto, cuda, cpu"),
    ],
)
def test_bad_set_values_are_one_line_errors(overrides, message):
    with pytest.raises(HParamError, match=message):
        resolve(Recipe(overrides=overrides))


def test_choices_are_pinned_like_any_value_and_a_default_outside_them_is_refused():
    assert resolve(Recipe(overrides={"SDPA_BACKEND": "cudnn"})).hparams["SDPA_BACKEND"].default == "cudnn"
    hp = HParams()
    hp.current_owner = "mine"
    with pytest.raises(HParamError, match=r"hyperparameter MODE \(plugin mine\): default 'c', expected one of a, b"):
        hp.str("MODE", "c", "a mode", choices=("a", "b"))


def test_malformed_set_option():
    with pytest.raises(HParamError, match=r"--set 'NUM_LAYERS': expected NAME=VALUE"):
        parse_set_options(["NUM_LAYERS"])
    assert parse_set_options(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}


def test_duplicate_hparam_declaration_names_both_plugins(plugin_dir):
    plugin_dir.add(
        "dup", "from golfc import hookimpl\n\n@hookimpl\ndef golfc_add_hparams(hp):\n    hp.int('MLP_MULT', 3, 'x')\n"
    )
    with pytest.raises(HParamError, match="MLP_MULT is declared by both relu2_mlp and dup"):
        resolve(Recipe(plugins=("dup",)), plugins_dir=plugin_dir.root)


def test_validate_recipe_hook_can_reject(plugin_dir):
    build = """
from golfc import hookimpl
from golfc.errors import RecipeError

@hookimpl
def golfc_validate_recipe(hparams, active):
    if hparams["NUM_LAYERS"].default < 4:
        raise RecipeError(f"picky needs NUM_LAYERS >= 4 (active: {len(active)} plugins)")
"""
    plugin_dir.add("picky", build)
    with pytest.raises(RecipeError, match="picky needs NUM_LAYERS >= 4"):
        resolve(Recipe(plugins=("picky",), overrides={"NUM_LAYERS": "2"}), plugins_dir=plugin_dir.root)
    resolve(Recipe(plugins=("picky",)), plugins_dir=plugin_dir.root)


def test_every_builtin_plugin_folder_is_complete():
    """A trick lives in one folder: build-time hooks, run-time code, a test and a README."""
    root = Path(__file__).resolve().parent.parent / "plugins"
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        names = {p.name for p in folder.iterdir()}
        missing = {"__init__.py", "runtime.py", "README.md", f"test_{folder.name}.py"} - names
        assert not missing, f"plugins/{folder.name} lacks {sorted(missing)}"


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_float_overrides_are_rejected(text):
    with pytest.raises(HParamError, match=rf"^--set MATRIX_LR={text}: expected a finite number$"):
        resolve(Recipe(overrides={"MATRIX_LR": text}))


def test_set_suggestion_ignores_case():
    with pytest.raises(HParamError, match=r"--set num_layers: no active plugin .*; did you mean NUM_LAYERS"):
        resolve(Recipe(overrides={"num_layers": "3"}))


def test_impl_symbol_missing_from_its_runtime_module_is_a_build_error(plugin_dir):
    from golfc.build import build_program
    from golfc.errors import EmitError

    plugin_dir.add("miss", slot_plugin("golfc_mlp", "miss_runtime", "Missing"), "class Other:\n    pass\n")
    with pytest.raises(
        EmitError, match=r"^plugin miss: Impl symbol 'Missing' is not a top-level name of run-time module miss_runtime"
    ):
        build_program(Recipe(plugins=("miss",)), plugin_dir.root)


def test_a_hook_that_raises_names_the_plugin_and_the_hook(plugin_dir):
    plugin_dir.add(
        "raiser", "from golfc import hookimpl\n\n@hookimpl\ndef golfc_add_hparams(hp):\n    hp.int('FOO', 'abc', 'x')\n"
    )
    with pytest.raises(PluginLoadError, match=r"^plugin raiser: golfc_add_hparams raised ValueError: invalid literal"):
        resolve(Recipe(plugins=("raiser",)), plugins_dir=plugin_dir.root)


def test_bad_hook_argument_names_plugin_file_hook_and_argument(plugin_dir):
    plugin_dir.add("gelu", "from golfc import hookimpl\n\n@hookimpl\ndef golfc_mlp(foo, recipe):\n    return None\n")
    with pytest.raises(PluginLoadError) as caught:
        resolve(Recipe(plugins=("gelu",)), plugins_dir=plugin_dir.root)
    assert str(caught.value) == (
        f"plugin gelu ({plugin_dir.root / 'gelu.py'}): golfc_mlp takes argument 'foo', which the hook does not pass "
        "(it passes: recipe)"
    )


def test_a_separator_character_in_a_runtime_file_is_one_line(plugin_dir):
    from golfc.build import build_program
    from golfc.errors import EmitError

    plugin_dir.add("sep", slot_plugin("golfc_attention_post", "sep_runtime", "post"), "")
    (plugin_dir.root / "sep_runtime.py").write_text("MARK = '\x01'\n\ndef post(y, v, layer, h):\n    return y\n")
    with pytest.raises(EmitError, match=r"^sep_runtime\.py \(section <golfc:plugins/sep>\): contains a \\x00 or \\x01 character"):
        build_program(Recipe(plugins=("sep",)), plugin_dir.root)
