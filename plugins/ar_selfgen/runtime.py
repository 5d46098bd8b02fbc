# ==================================================================================================
# plugins/ar_selfgen: the calibration source that samples its own tokens. Each batch: SELFGEN_SEQS sequences
# started from a random token, extended one token at a time to SELFGEN_SEQ_LEN by sampling softmax(logits / T)
# of the trained model (full recompute per token, no KV cache), seeded by SELFGEN_SEED + rank.
# ==================================================================================================


def ar_selfgen_batches(model, h, ctx, count):
    """Up to `count` self-generated batches, int64 (SELFGEN_SEQS, SELFGEN_SEQ_LEN) on ctx.device."""
    gen = torch.Generator(device=ctx.device).manual_seed(h.selfgen_seed + ctx.rank)
    was_training = model.training
    model.eval()
    try:
        for _ in range(count):
            ids = torch.randint(0, h.vocab_size, (h.selfgen_seqs, 1), device=ctx.device, generator=gen)
            with torch.no_grad(), bf16_autocast(ctx.device):
                for _ in range(h.selfgen_seq_len - 1):
                    logits = model.logits(model.hidden(ids))[:, -1].float()  # (B, V)
                    probs = torch.softmax(logits / h.selfgen_temperature, dim=-1)
                    ids = torch.cat([ids, torch.multinomial(probs, 1, generator=gen)], dim=1)
            yield ids
    finally:
        model.train(was_training)
