"""NorMuon: per-neuron second-moment normalisation of Muon's orthogonalised update."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="after Newton-Schulz, divide each output row by the sqrt of a bias-corrected EMA of its mean square",
    evidence="arXiv 2510.05491; PR only (PR-branch folder 2026-03-19_NorMuon_Int6STE_SWA_SlidingWindow, "
    "MUON_BETA2=0.95); in no leaderboard record; no isolated delta bpb claimed",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("MUON_BETA2", 0.95, "NorMuon: EMA decay of each output row's mean squared update", ge=0.0, le=0.9999)
    hp.bool("NORMUON_KEEP_NORM", True, "NorMuon: rescale each matrix back to its orthogonalised Frobenius norm")


@hookimpl
def golfc_muon_transform() -> Impl:
    return Impl(module="golfc_plugins.normuon.runtime", symbols="NORMUON", order=50)
