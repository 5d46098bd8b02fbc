"""ar_selfgen: calibration on tokens the trained model samples itself (no training or validation data read)."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="calibration batches sampled from the trained model (temperature, fixed seed, random first token)",
    evidence="2026-03-25_ValCalib_GPTQ_XSA_BigramHash3072 (PR #1019), 03-31 GPTQ_AR_SELFGEN=1; confirmed legal "
    "by an organizer (2nd-hand, #1234)",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int("SELFGEN_SEQS", 8, "sequences sampled per calibration batch (per rank)", ge=1)
    hp.int("SELFGEN_SEQ_LEN", 256, "tokens per sampled sequence", ge=2)
    hp.float("SELFGEN_TEMPERATURE", 0.8, "sampling temperature", gt=0.0)
    hp.int("SELFGEN_SEED", 1234, "seed of the sampler (plus the rank)", ge=0)


@hookimpl
def golfc_calibration_source() -> Impl:
    return Impl(module="golfc_plugins.ar_selfgen.runtime", symbols="ar_selfgen_batches")
