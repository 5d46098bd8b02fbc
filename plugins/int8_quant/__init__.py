"""Default export quantizer: per-row int8 with a 99.99984th-percentile clip, fp16 scales."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="per-row int8 for large matrices, small tensors kept in float", evidence="baseline")


@hookimpl
def golfc_quantizer() -> Impl:
    return Impl(
        module="golfc_plugins.int8_quant.runtime",
        symbols={
            "quantize_state_dict": "quantize_state_dict_int8",
            "dequantize_state_dict": "dequantize_state_dict_int8",
            "QUANT_LABEL": "INT8_LABEL",
        },
    )
