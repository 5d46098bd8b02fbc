# ==================================================================================================
# plugins/mixed_seqlen: ranks train on different sequence lengths within one step (PR #1212): rank r takes
# LOCAL_SEQS_PER_GPU[r] sequences of SEQS_PER_GPU[r] tokens per micro-batch (a few ranks see long context,
# the others stay cheap; the counts are chosen so that every rank's step takes about as long). Every token of
# the step weighs the same in the averaged gradient: rank r's mean loss is weighted by its share of the step's
# tokens times the number of ranks (loss_weight), so the core's plain average over ranks is the token mean.
# ==================================================================================================
from golfc_plugins.token_stream_loader.runtime import TokenStreamLoader  # editors and tests only: blanked

from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def mixed_seqlen_plan(h, world_size, grad_accum_steps, global_tokens):
    """[(seq_len, seqs)] per rank for one micro-batch. Empty lists: TRAIN_SEQ_LEN everywhere and the baseline's
    split of global_tokens. Checked: one entry per rank, no sequence longer than TRAIN_SEQ_LEN (the RoPE tables
    and the evaluation windows are built for TRAIN_SEQ_LEN: set it to the longest)."""
    lens, counts = tuple(h.seqs_per_gpu), tuple(h.local_seqs_per_gpu)
    if not lens and not counts:
        return [(h.train_seq_len, global_tokens // (world_size * grad_accum_steps * h.train_seq_len))] * world_size
    for name, values in (("SEQS_PER_GPU", lens), ("LOCAL_SEQS_PER_GPU", counts)):
        if len(values) != world_size:
            raise RunInputError(f"{name}={','.join(map(str, values))}: expected one entry per rank ({world_size})")
    if max(lens) > h.train_seq_len:
        raise RunInputError(f"SEQS_PER_GPU={','.join(map(str, lens))}: longer than TRAIN_SEQ_LEN={h.train_seq_len}; "
                            "expected TRAIN_SEQ_LEN >= the longest (RoPE tables and eval windows use it)")
    return list(zip(lens, counts))


def mixed_seqlen_weights(plan):
    """Each rank's loss weight: world_size * its tokens / all ranks' tokens (1.0 each when the shares are equal).
    The mean over ranks of weight_r * grad(mean loss_r) is then the gradient of the mean loss over every token."""
    tokens = [L * n for L, n in plan]
    return [len(plan) * t / sum(tokens) for t in tokens]


class MixedSeqLenLoader(TokenStreamLoader):
    """The reference's sequential stream; each call takes one chunk holding every rank's micro-batch
    (sum over ranks of seqs * seq_len + 1 tokens), and rank r keeps its own span of it."""

    def __init__(self, h, ctx):
        super().__init__(h, ctx)
        self.h, self.grad_accum_steps = h, ctx.grad_accum_steps
        self.plan = mixed_seqlen_plan(h, ctx.world_size, ctx.grad_accum_steps, h.train_batch_tokens)
        self.loss_weight = mixed_seqlen_weights(self.plan)[ctx.rank]  # read by the core's train_step
        self.spans = [L * n + 1 for L, n in self.plan]  # one extra token: the last input's target
        if h.seqs_per_gpu:
            log0("mixed_seqlen: " + " ".join(f"rank{r}={L}x{n}={L * n * ctx.grad_accum_steps}tok"
                                             for r, (L, n) in enumerate(self.plan))
                 + f" loss_weight(rank0)={mixed_seqlen_weights(self.plan)[0]:.4f}")

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        """This rank's (x, y), int64 (LOCAL_SEQS_PER_GPU[r], SEQS_PER_GPU[r]) on device; y is x shifted by one."""
        if not self.h.seqs_per_gpu:
            return super().next_batch(global_tokens, seq_len, grad_accum_steps)
        chunk = self._take(sum(self.spans))
        start = sum(self.spans[: self.rank])
        local = chunk[start : start + self.spans[self.rank]].to(torch.int64)
        if self.device.type == "cuda":
            local = local.pin_memory()
        local = local.to(self.device, non_blocking=True)
        L = self.plan[self.rank][0]
        return local[:-1].view(-1, L), local[1:].view(-1, L)
