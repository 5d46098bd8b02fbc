# ==================================================================================================
# plugins/plain_eval: validation on non-overlapping TRAIN_SEQ_LEN windows; every target scored once
# ==================================================================================================
from golfc.runtime.data import target_bytes
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def score_plain_windows(model, val_tokens, h, ctx, final=False):
    """Scores of this rank's share of the windows; windows are split across ranks by sequence."""
    seq_len = h.train_seq_len
    num_seqs = (val_tokens.numel() - 1) // seq_len
    first, last = num_seqs * ctx.rank // ctx.world_size, num_seqs * (ctx.rank + 1) // ctx.world_size
    # VAL_BATCH_SIZE counts tokens over all ranks and micro-batches, as TRAIN_BATCH_TOKENS does, so a
    # forward pass takes 64 windows at the defaults on 1 to 8 GPUs (the reference's split; 512 windows at
    # once reserved 14.6 instead of 10.7 GiB on one H100, bench/RESULTS.md).
    batch_seqs = h.val_batch_size // (ctx.world_size * ctx.grad_accum_steps * seq_len)
    if batch_seqs < 1:
        raise RunInputError(
            f"VAL_BATCH_SIZE={h.val_batch_size} is less than one TRAIN_SEQ_LEN={seq_len} window per rank and "
            f"micro-batch ({ctx.world_size} x {ctx.grad_accum_steps})"
        )
    positions, nll, nbytes = [], [], []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), bf16_autocast(ctx.device):
        for s in range(first, last, batch_seqs):
            e = min(s + batch_seqs, last)
            chunk = val_tokens[s * seq_len : e * seq_len + 1].to(ctx.device, torch.int64, non_blocking=True)
            x, y = chunk[:-1].view(-1, seq_len), chunk[1:].view(-1, seq_len)  # (b, T)
            nll.append(model(x, y, reduction="none").float().flatten())
            nbytes.append(target_bytes(x, y, ctx.luts).flatten())
            positions.append(torch.arange(s * seq_len + 1, e * seq_len + 1, device=ctx.device))
    model.train(was_training)
    if not positions:  # more ranks than windows
        empty = torch.empty(0, device=ctx.device)
        return Scores(empty.long(), empty.float(), empty.to(torch.int16))
    return Scores(positions=torch.cat(positions), nll=torch.cat(nll), nbytes=torch.cat(nbytes))
