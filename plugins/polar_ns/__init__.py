"""Polar Express: Muon's Newton-Schulz iteration with per-iteration minimax coefficients."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="Newton-Schulz with 5 per-iteration Polar Express coefficient tuples instead of one fixed quintic",
    evidence="PR #1344 -> 2026-04-23 ..._PolarNS_MinLR_FusedCE (PR #1787), 04-27: part of -0.0021 bpb (PR #1787)",
)


@hookimpl
def golfc_muon_transform() -> Impl:
    return Impl(module="golfc_plugins.polar_ns.runtime", symbols="POLAR_NS", order=40, exclusive=("orthogonalise",))
