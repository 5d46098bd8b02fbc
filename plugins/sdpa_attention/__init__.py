"""Default attention kernel: PyTorch scaled-dot-product attention, causal, grouped-query."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="causal SDPA with GQA; SDPA_BACKEND picks cuDNN / flash / efficient / math",
    evidence="baseline (2026-03-17_NaiveBaseline); cuDNN backend: 367.7 -> 333.1 ms/step on 1xH100, same loss",
)


SDPA_CHOICES = ("auto", "cudnn", "flash", "efficient", "math")  # auto, or a key of runtime.SDPA_BACKENDS


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str(
        "SDPA_BACKEND",
        "auto",
        "auto (PyTorch's choice), cudnn, flash, efficient or math",
        choices=SDPA_CHOICES,
    )


@hookimpl
def golfc_attention_kernel() -> Impl:
    return Impl(module="golfc_plugins.sdpa_attention.runtime", symbols="sdpa_attention")
