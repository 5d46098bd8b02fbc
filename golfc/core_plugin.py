"""The essential plugin: the core's own hyperparameters (the reference baseline's names and defaults).

It owns no slot; it cannot be disabled. Every value is an environment variable of the emitted script.
"""

from __future__ import annotations

from golfc import HParams, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(summary="core engine: data, model skeleton, training loop, export and BPB evaluation")


@hookimpl
def golfc_add_hparams(hp: HParams) -> None:
    # data and run
    hp.str("DATA_PATH", "./data/datasets/fineweb10B_sp1024", "folder with fineweb_train_*.bin / fineweb_val_*.bin")
    hp.str("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model", "SentencePiece model used for BPB tables")
    hp.str("RUN_ID", "", "log name under logs/ (default: a fresh uuid4)")
    hp.int("SEED", 1337, "seed for python, numpy and torch", ge=0, le=2**32 - 1)  # numpy's seed range
    hp.int("VOCAB_SIZE", 1024, "must equal the tokenizer's vocab size", ge=1)
    # validation and logging
    hp.int("VAL_BATCH_SIZE", 524_288, "validation tokens per round, over all ranks and micro-batches", ge=1)
    hp.int("VAL_LOSS_EVERY", 1000, "validate every N steps (0: only at the end)", ge=0)
    hp.int("TRAIN_LOG_EVERY", 200, "print train_loss every N steps", ge=0)
    # training length
    hp.int("ITERATIONS", 20_000, "maximum optimizer steps", ge=0)
    hp.int("WARMUP_STEPS", 20, "untimed compile-warmup steps, after which weights, optimizers and data reset", ge=0)
    hp.int("TRAIN_BATCH_TOKENS", 524_288, "tokens per optimizer step, over all ranks and micro-batches", ge=1)
    hp.int("TRAIN_SEQ_LEN", 1024, "sequence length for training and validation windows", ge=1)
    hp.float("MAX_WALLCLOCK_SECONDS", 600.0, "training wall-clock cap in seconds (0: none)", ge=0.0)
    hp.float("GPTQ_RESERVE_SECONDS", 0.0,
             "under a cap, training stops this much early so that export's calibration (GPTQ) fits inside it", ge=0.0)
    hp.float("GRAD_CLIP_NORM", 0.0, "clip the global gradient norm (0: off)", ge=0.0)
    # model shape
    hp.int("NUM_LAYERS", 9, "transformer blocks", ge=1)
    hp.int("MODEL_DIM", 512, "residual width d", ge=1)
    hp.int("NUM_HEADS", 8, "query heads", ge=1)
    hp.int("NUM_KV_HEADS", 4, "key/value heads (grouped-query attention)", ge=1)
    hp.bool("TIE_EMBEDDINGS", True, "output head shares the token embedding")
    hp.float("ROPE_BASE", 10000.0, "RoPE frequency base", gt=0.0)
    hp.bool("ROPE_BF16_TABLES", True,
            "RoPE tables of bf16 frequencies, rounded to bf16, as the reference trains with on a GPU (0: fp32)")
    hp.float("LOGIT_SOFTCAP", 30.0, "logits = c * tanh(logits / c)", gt=0.0)
    hp.float("QK_GAIN_INIT", 1.5, "initial per-head query gain")
    hp.float("TIED_EMBED_INIT_STD", 0.005, "std of the tied embedding init", ge=0.0)
    # execution
    hp.int("COMPILE", -1, "torch.compile the model and optimizer kernels: 1 on, 0 off, -1 on with CUDA only",
           ge=-1, le=1)
    hp.bool("COMPILE_TUNING", False, "inductor coordinate-descent tuning of the compiled kernels")
    hp.str("DEVICE", "auto", "auto (cuda if available), cuda or cpu", choices=("auto", "cuda", "cpu"))
    hp.str("EVAL_ONLY", "", "an artifact (final_model.*.ptz) to score without training (empty: train, export, score)")
    # rules between them (checked at build and when the run starts, after the ranges)
    hp.require_multiple("MODEL_DIM", "NUM_HEADS", note="the head dimension is MODEL_DIM / NUM_HEADS")
    hp.require_multiple("NUM_HEADS", "NUM_KV_HEADS", note="query heads share key/value heads in equal groups")
    hp.require_even_quotient("MODEL_DIM", "NUM_HEADS", note="RoPE rotates pairs of the head dimension")
    hp.require_multiple(
        "TRAIN_BATCH_TOKENS", "TRAIN_SEQ_LEN", factor=8, note="every step is 8 micro-batches of whole sequences"
    )
