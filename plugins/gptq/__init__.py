"""gptq: full-Hessian GPTQ rounding from calibration batches (training data or self-generated tokens)."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="GPTQ: round each matrix column by column with Hessian (X^T X) error feedback from calibration batches",
    evidence="PR #535/#634; 2026-03-29_Loader_FullGPTQ (PR #1060, train data); every later record; "
    "1.1194 -> 1.1147 bundled with XSA-all and BigramHash 3072",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("GPTQ_CALIB_BATCHES", 16, "calibration batches (each one training micro-batch per rank)", ge=1)
    hp.int("GPTQ_BLOCK_SIZE", 128, "columns per lazy-update block", ge=1)
    hp.float("GPTQ_DAMP", 0.01, "damping added to diag(H), as a fraction of its mean", gt=0.0)


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("gptq", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.gptq.runtime", symbols="GPTQ_STAGE", order=10)
