"""Weight decay: decoupled Muon WD (with an optional late taper), AdamW decay of the embedding and the rest."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

RUNTIME = "golfc_plugins.weight_decay.runtime"

GOLFC_PLUGIN = PluginInfo(
    summary="p *= 1 - lr*MUON_WD before each Muon update (tapered late by WD_TAPER_*); AdamW decay EMBED_WD, ADAM_WD",
    evidence="Muon WD 0.01 (03-19) -> 0.04 (03-20) -> 0.085 + EMBED_WD (04-01) -> 0.095 (04-09+): WD 0.09 made all "
    "66 matrices fit at int6, -0.0017 bpb (seed 42); taper: 2026-04-18_PR1626_CaseOps_Taper (PR #1729), "
    "'small, consistent'",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.float("MUON_WD", 0.095, "decoupled weight decay of Muon's matrices: p *= 1 - lr * MUON_WD per step", ge=0.0)
    hp.float("EMBED_WD", 0.085, "AdamW decoupled weight decay of the token embedding", ge=0.0)
    hp.float("ADAM_WD", 0.02, "AdamW decoupled weight decay of Adam's other groups (scalars, untied head)", ge=0.0)
    hp.float("WD_TAPER_START_FRAC", 0.70, "run fraction where Muon's decay starts to taper", ge=0.0, le=1.0)
    hp.float("WD_TAPER_FINAL_MULT", 1.0, "Muon decay multiplier at the end of the run (1: no taper; 0.5 in PR #1729)",
             ge=0.0)


@hookimpl
def golfc_muon_transform() -> Impl:
    return Impl(module=RUNTIME, symbols="MUON_WEIGHT_DECAY", order=10)


@hookimpl
def golfc_run_events() -> Impl:
    return Impl(module=RUNTIME, symbols="WeightDecayTaper")
