"""Window attention: a causal window of WINDOW_SIZE tokens on the layers in WINDOW_ATTN_LAYERS."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="causal sliding-window attention (WINDOW_SIZE keys) on WINDOW_ATTN_LAYERS, full attention elsewhere",
    evidence="PR #1212 (1.1108, 12L sp1024): -0.0039 vs 1.1147; windows of 512 on layers 2,4,6,8,10",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("WINDOW_SIZE", 512, "keys each query sees on a window layer: itself and the WINDOW_SIZE - 1 before", ge=1)
    hp.int_list("WINDOW_ATTN_LAYERS", (2, 4, 6, 8), "layers (0-based) with window attention, e.g. 2,4,6", ge=0)
    hp.str("WINDOW_KERNEL", "auto", "auto (flash-attn window_size if importable, else FlexAttention when compiled on "
           "CUDA, else masked SDPA), flash, flex or sdpa", choices=("auto", "flash", "flex", "sdpa"))


@hookimpl
def golfc_attention_kernel() -> Impl:
    return Impl(module="golfc_plugins.window.runtime", symbols="window_or_full_attention",
                requires=("golfc_plugins.sdpa_attention.runtime", "golfc_plugins.sdpa_attention.masks",
                          "golfc_plugins.sdpa_attention.flash"))
