"""Default export quantizer: per-row int8 with a 99.99984th-percentile clip, fp16 scales."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="per-row int8 for large matrices, small tensors kept in float", evidence="baseline")


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("INT8_MIN_SCALE", 1.0 / 127.0, "floor of the per-row scale: the reference's 1/127 (0: no floor)", ge=0.0)


@hookimpl
def golfc_quantizer() -> Impl:
    return Impl(
        module="golfc_plugins.int8_quant.runtime",
        symbols={
            "quantize_model": "quantize_model_int8",
            "dequantize_state_dict": "dequantize_state_dict_int8",
            "QUANT_LABEL": "INT8_LABEL",
        },
    )
