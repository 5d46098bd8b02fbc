"""Legal score-first test-time training: each chunk of validation windows is scored, then trained on."""

from __future__ import annotations

from golfc import HParams, Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="score each chunk of sliding windows under no_grad, then SGD on that chunk (final eval only); per-document "
            "LoRA and phased (LoRA + global SGD) modes",
    evidence="2026-03-23 LegalTTT (PR #549): -0.0025; 2026-04-06_SP8192_QK5_LegalTTT (PR #1413): -0.0021; "
             "phased (PR #1610, #1626): -0.00056 vs per-document LoRA, 3 phases -0.0008 vs 1",
)


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    hp.str("TTT_MODE", "sgd", "sgd: all weights, SGD with momentum on each scored chunk; lora: per-document LoRA "
           "adapters (TTT_LORA_TARGETS), one Adam step per scored chunk; phased: lora, plus global SGD of every weight "
           "on the documents scored so far at PHASED_TTT_NUM_PHASES boundaries", choices=("sgd", "lora", "phased"))
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
    hp.str("TTT_LORA_TARGETS", "c_q,c_v", "lora: adapted modules, comma-separated ends of module names (c_q, c_k, c_v, "
           "proj, mlp.fc ...: the linear itself; attn, mlp: parallel to the sublayer; head: the logits)")
    hp.float("TTT_LORA_ALPHA", 0.0, "lora: adapter output x ALPHA / rank (PR #1767: 144); 0: x 1", ge=0.0)
    hp.float("TTT_BETA1", 0.9, "lora: Adam beta1 of the adapters (the 04-27 record: 0)", ge=0.0, le=1.0)
    hp.float("TTT_BETA2", 0.95, "lora: Adam beta2 of the adapters (the 04-27 record: 0.99)", ge=0.0, le=1.0)
    hp.float("TTT_WEIGHT_DECAY", 0.0, "lora: decoupled (AdamW) weight decay of the adapters (04-27: 0.5)", ge=0.0)
    hp.int("PHASED_TTT_PREFIX_DOCS", 2000, "phased: documents, from the stream's start, whose scoring the global SGD "
           "phases are spread over", ge=0)
    hp.int("PHASED_TTT_NUM_PHASES", 3, "phased: global SGD after document prefix * (p + 1) // phases, p < phases",
           ge=1)
    hp.float("GLOBAL_TTT_LR", 0.001, "phased: global SGD rate at its first chunk (cosine to 0 over the chunks)", ge=0.0)
    hp.float("GLOBAL_TTT_MOMENTUM", 0.9, "phased: global SGD momentum (a fresh optimizer per phase)", ge=0.0, le=1.0)
    hp.int("GLOBAL_TTT_EPOCHS", 1, "phased: passes of each global SGD over the documents scored so far", ge=0)
    hp.int("GLOBAL_TTT_CHUNK_TOKENS", 32_768, "phased: tokens per global SGD chunk (one rate of the cosine)", ge=1)
    hp.int("GLOBAL_TTT_BATCH_SEQS", 32, "phased: TRAIN_SEQ_LEN sequences per global SGD step on each rank", ge=1)
    hp.float("GLOBAL_TTT_GRAD_CLIP", 1.0, "phased: clip the gradient norm of each global SGD step (0: off)", ge=0.0)
    hp.require_at_least("GLOBAL_TTT_CHUNK_TOKENS", "TRAIN_SEQ_LEN",
                        note="a global SGD chunk trains on whole TRAIN_SEQ_LEN sequences")


@hookimpl
def golfc_eval_adapter() -> Impl:
    return Impl(module="golfc_plugins.ttt.documents", symbols="score_then_train",  # the per-document modes, the adapter
                requires=("golfc_plugins.plain_eval.runtime",  # its scorer, for evaluations that do not adapt
                          "golfc_plugins.ttt.runtime"))  # the chunked SGD mode (and the SGD pieces phased reuses)


@hookimpl
def golfc_run_events() -> Impl:
    return Impl(module="golfc_plugins.ttt.documents", symbols="TTTTargetsCheck")  # TTT_LORA_TARGETS at start-up
