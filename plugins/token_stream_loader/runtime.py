# ==================================================================================================
# plugins/token_stream_loader: one sequential stream over the sorted train shards, wrapping forever,
# no shuffling; every call takes one contiguous chunk and rank r trains on span r of it
# ==================================================================================================
from golfc.runtime.data import load_data_shard, shard_files
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class TokenStreamLoader:
    """The reference's loader: every rank reads the same stream and keeps its own span of each chunk."""

    def __init__(self, h, ctx):
        self.pattern, self.files = h.train_files, shard_files(h.train_files)
        # Every id is checked as its shard loads (one max per shard, a tiny share of a run's time), rather than
        # a device-side assert in the middle of training.
        self.vocab_size = h.vocab_size
        self.rank, self.world_size, self.device = ctx.rank, ctx.world_size, ctx.device
        self.file_idx, self.pos = 0, 0
        self.tokens = load_data_shard(self.files[0], self.vocab_size)

    def _take(self, n):
        """The next n tokens of the stream (uint16, CPU), moving on to the next shard as needed."""
        chunks, empty_loads = [], 0
        while n > 0:
            if self.pos >= self.tokens.numel():
                empty_loads += 1
                if empty_loads > len(self.files):  # a whole pass over the shards gave nothing
                    raise RunInputError(f"{self.pattern}: every train shard is empty, expected tokens")
                self.file_idx = (self.file_idx + 1) % len(self.files)
                self.tokens, self.pos = load_data_shard(self.files[self.file_idx], self.vocab_size), 0
                continue
            empty_loads = 0
            k = min(n, self.tokens.numel() - self.pos)
            chunks.append(self.tokens[self.pos : self.pos + k])
            self.pos, n = self.pos + k, n - k
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        """This rank's (x, y), int64 (local_tokens // seq_len, seq_len) on device; y is x shifted by one."""
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        span = local_tokens + 1  # one extra token so that the last input has a target
        chunk = self._take(self.world_size * span)
        local = chunk[self.rank * span : (self.rank + 1) * span].to(torch.int64)
        if self.device.type == "cuda":
            local = local.pin_memory()
        local = local.to(self.device, non_blocking=True)
        return local[:-1].view(-1, seq_len), local[1:].view(-1, seq_len)
