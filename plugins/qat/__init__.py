"""qat: straight-through fake quantization of every CastedLinear weight on the export quantizer's grid,
optionally switched on late (LATE_QAT_THRESHOLD)."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="STE fake quantization in training on the low-bit quantizer's per-row grid; late QAT by lr multiplier",
    evidence="2026-03-19_MLP3x_QAT_Int6 (full QAT closed the quant gap); late QAT LATE_QAT_THRESHOLD=0.1/0.15 in "
    "03-21..03-31, where torch.compile constant-folded the class flag and it never ran (fixed here: a tensor flag)",
)

RUNTIME = "golfc_plugins.qat.runtime"


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("LATE_QAT_THRESHOLD", 0.0, "switch fake quantization on once the lr multiplier falls below this "
             "(0: on from the first step)", ge=0.0)


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("qat", active)


@hookimpl
def golfc_weight_transform() -> Impl:
    return Impl(module=RUNTIME, symbols="QatWeightTransform")


@hookimpl
def golfc_train_quantization() -> Impl:
    return Impl(module=RUNTIME, symbols="qat_train_hook")
