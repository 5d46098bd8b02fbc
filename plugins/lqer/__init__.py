"""lqer: low-rank corrections of the largest quantization errors, packed asymmetric (A int2, B int4)."""

from __future__ import annotations

from golfc_plugins.int6 import require_lowbit

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="after quantization, add a rank-LQER_RANK SVD of W - Q*s to the LQER_TOP_K worst matrices (int2 A, int4 B)",
    evidence="PR #1797 -> 2026-04-27_SP8192_LQER (PR #1855), SmearGateBOSFix..LQERAsym (PR #1851): "
    "1.0634 -> 1.0611/1.0614 bundled",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("LQER_RANK", 4, "rank of each correction", ge=1)
    hp.int("LQER_TOP_K", 3, "matrices corrected: those with the largest ||W - Q s||_F", ge=0)
    hp.int("LQER_GROUP", 64, "B's int4 values share one fp16 scale per group of this many", ge=1)


@hookimpl
def golfc_validate_recipe(active: tuple[str, ...]) -> None:
    require_lowbit("lqer", active)


@hookimpl
def golfc_quant_stages() -> Impl:
    return Impl(module="golfc_plugins.lqer.runtime", symbols="LQER_STAGE", order=20)
