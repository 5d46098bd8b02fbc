"""Mixed sequence lengths across ranks: rank r trains on LOCAL_SEQS_PER_GPU[r] sequences of SEQS_PER_GPU[r] tokens."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="per-rank sequence lengths and micro-batch sizes (SEQS_PER_GPU, LOCAL_SEQS_PER_GPU), token-weighted grads",
    evidence="PR #1212 (1.1108, 12L sp1024, with window attention): 5 ranks 36x2048 + 3 ranks 10x6144",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.int_list("SEQS_PER_GPU", (), "sequence length of each rank, e.g. 2048,2048,6144,6144 (empty: TRAIN_SEQ_LEN "
                "everywhere, the baseline split)", ge=1)
    hp.int_list("LOCAL_SEQS_PER_GPU", (), "sequences per micro-batch of each rank, e.g. 36,36,10,10 (with "
                "SEQS_PER_GPU)", ge=1)


@hookimpl
def golfc_data_loader() -> Impl:
    return Impl(module="golfc_plugins.mixed_seqlen.runtime", symbols="MixedSeqLenLoader",
                requires=("golfc_plugins.token_stream_loader.runtime",))
