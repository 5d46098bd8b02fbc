"""XSA: exclusive self-attention on the last XSA_LAST_N layers (an attention_post transform)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="remove from each token's attention output its component along the token's own value vector",
    evidence="2026-03-20_11L_EfficientPartialXSA (PR #265, last 3 layers): about -0.002 bpb at <2 ms/step",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("XSA_LAST_N", 3, "apply XSA on the last N layers (NUM_LAYERS or more: every layer)", ge=0)


@hookimpl
def golfc_attention_post() -> Impl:
    return Impl(module="golfc_plugins.xsa.runtime", symbols="ExclusiveSelfAttention")
