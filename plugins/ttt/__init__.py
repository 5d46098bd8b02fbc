"""Legal score-first test-time training: each chunk of validation windows is scored, then trained on."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="score each chunk of sliding windows under no_grad, then SGD on that chunk (final eval only)",
    evidence="2026-03-23 LegalTTT (PR #549): -0.0025; 2026-04-06_SP8192_QK5_LegalTTT (PR #1413): -0.0021",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("TTT_MODE", "sgd", "sgd: all weights, SGD with momentum on each scored chunk; lora: per-document LoRA "
           "adapters on c_q and c_v, one Adam step per scored chunk", choices=("sgd", "lora"))
    hp.int("TTT_CHUNK_TOKENS", 32_768, "validation tokens per chunk (a window belongs to its first target's)", ge=1)
    hp.int("TTT_EPOCHS", 3, "passes over each scored chunk", ge=0)
    hp.float("TTT_LR", 0.002, "SGD learning rate at the first chunk (cosine to 0 over the chunks)", ge=0.0)
    hp.float("TTT_MOMENTUM", 0.9, "SGD momentum", ge=0.0, le=1.0)
    hp.float("TTT_GRAD_CLIP", 1.0, "clip the gradient norm of each TTT step (0: off)", ge=0.0)
    hp.int("TTT_BATCH_SEQS", 32, "TRAIN_SEQ_LEN sequences per TTT step on each rank", ge=1)
    hp.require_at_least("TTT_CHUNK_TOKENS", "TRAIN_SEQ_LEN", note="a chunk trains on whole TRAIN_SEQ_LEN sequences")
    hp.int("TTT_LORA_RANK", 8, "lora: rank of each document's adapters", ge=1)
    hp.float("TTT_LORA_LR", 0.01, "lora: Adam learning rate of the adapters (betas 0.9, 0.95)", ge=0.0)
    hp.int("TTT_LORA_CHUNK", 256, "lora: targets per scored chunk of a document (then one Adam step)", ge=1)
    hp.int("TTT_LORA_BATCH", 64, "lora: documents adapted side by side on each rank (one adapter per row)", ge=1)


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.ttt.runtime", symbols="score_then_train",
                requires=("golfc_plugins.plain_eval.runtime",))  # its scorer, for evaluations that do not adapt
