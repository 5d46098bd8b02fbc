"""sdclip: the row clip is k standard deviations of the row (no search), k per tensor class."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="row clip = k * std(row) (SDCLIP_*_SIGMAS per class): lower entropy of the values, fewer bytes",
    evidence="2026-04-05_SP8192_GPTQ-Embeddings_SDClip (PR #1394); MLP clip 12 (PR #1769): -0.001; "
    "Hessian-aware (PR #1412): 1.0856 -> 1.0835",
    conflicts=("gptq_lite",),
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("SDCLIP_MATRIX_SIGMAS", 12.85, "k for attention, MLP and other matrices", gt=0.0)
    hp.float("SDCLIP_MLP_SIGMAS", 0.0, "k for MLP matrices (0: SDCLIP_MATRIX_SIGMAS)", ge=0.0)
    hp.float("SDCLIP_ATTN_SIGMAS", 0.0, "k for attention matrices (0: SDCLIP_MATRIX_SIGMAS)", ge=0.0)
    hp.float("SDCLIP_EMBED_SIGMAS", 20.0, "k for the embedding", gt=0.0)
    hp.float("HESSIAN_CLIP_LAMBDA", 0.0, "Hessian-aware clip: k*std*(1+lambda*(row importance-1)); "
             "0: plain SDClip; > 0 needs gptq (PR #1412 used 0.175)", ge=0.0)


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("sdclip", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.sdclip.runtime", symbols="SDCLIP_STAGE")
