"""MuonEq-R: each output row of Muon's momentum update scaled to unit norm before orthogonalisation."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="before Newton-Schulz, divide each output row of the Nesterov update by its L2 norm (clamped at 1e-7)",
    evidence="arXiv 2603.28254; PR #1217/#1260, records 2026-04-03 (MuonEqR_DepthRecurrence) to 04-27 "
    "(MUON_ROW_NORMALIZE=1): about -0.001 bpb",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.bool("MUON_ROW_NORMALIZE", True, "MuonEq-R: normalise each output row of Muon's update before orthogonalising")


@hookimpl
def golfc_muon_transform() -> Impl:
    return Impl(module="golfc_plugins.muon_eq_r.runtime", symbols="MUON_EQ_R", order=30)
