# ==================================================================================================
# plugins/coprime_loader: each train shard cut into TRAIN_SEQ_LEN(+1)-token blocks after a random phase,
# visited once each in the order (start + k * stride) mod blocks with gcd(stride, blocks) = 1; each batch
# mixes several shards drawn with probability ~ remaining^alpha (PR #726, 2026-03-29 record PR #1060)
# ==================================================================================================
from golfc.runtime.data import SHARD_HEADER_BYTES, read_shard_header, shard_files
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


class CoprimeWalk:
    """One shard's blocks in a coprime-stride order: block (start + k * stride) mod count for k = 0 .. count - 1
    visits every block exactly once (stride is a unit mod count). Block b holds tokens
    phase + b * seq_len .. phase + (b + 1) * seq_len (inclusive: one more for the last target)."""

    def __init__(self, num_tokens, seq_len, rng):
        self.phase = int(rng.integers(0, seq_len)) if num_tokens > seq_len + 1 else 0
        self.count = max((num_tokens - 1 - self.phase) // seq_len, 0)
        self.start = int(rng.integers(0, self.count)) if self.count else 0
        self.stride = 1
        if self.count > 1:
            while True:  # a random stride coprime to the count
                s = int(rng.integers(1, self.count))
                if math.gcd(s, self.count) == 1:
                    self.stride = s
                    break
        self.taken = 0

    @property
    def remaining(self):
        return self.count - self.taken

    def next_block(self):
        block = (self.start + self.taken * self.stride) % self.count
        self.taken += 1
        return block


class CoprimeLoader:
    """Every rank draws the same global plan from a generator seeded with SEED and keeps its own share, so the
    ranks never overlap and need no communication. A pass ends when every block of every shard was used;
    the next pass draws new phases, starts and strides. Shards are memory-mapped, not loaded."""

    def __init__(self, h, ctx):
        self.h, self.seq_len = h, h.train_seq_len
        self.rank, self.world_size, self.device = ctx.rank, ctx.world_size, ctx.device
        self.files = shard_files(h.train_files)
        self.sizes = [read_shard_header(f) for f in self.files]
        if not any((n - 1) // self.seq_len for n in self.sizes):
            raise RunInputError(f"{h.train_files}: no shard holds TRAIN_SEQ_LEN + 1 = {self.seq_len + 1} tokens")
        self.maps = [None] * len(self.files)
        self.rng = np.random.default_rng(h.seed)
        self.calls, self.batches, self.passes = 0, 0, 0
        self._new_pass()

    def _new_pass(self):
        self.walks = [CoprimeWalk(n, self.seq_len, self.rng) for n in self.sizes]
        self.passes += 1

    def _tokens(self, i):
        if self.maps[i] is None:
            self.maps[i] = np.memmap(self.files[i], dtype="<u2", mode="r", offset=SHARD_HEADER_BYTES,
                                     shape=(self.sizes[i],))
        return self.maps[i]

    def mix_and_alpha(self):
        """(shards per batch, alpha): linear from their start to their end values over LOADER_RAMP_BATCHES."""
        h = self.h
        t = min(self.batches / h.loader_ramp_batches, 1.0)
        mix = round(h.loader_mix_start + t * (h.loader_mix_end - h.loader_mix_start))
        return max(mix, 1), h.loader_alpha_start + t * (h.loader_alpha_end - h.loader_alpha_start)

    def plan(self, n):
        """n (shard, block) pairs for one global micro-batch, in shuffled order."""
        picks = []
        while len(picks) < n:
            live = [i for i, w in enumerate(self.walks) if w.remaining > 0]
            if not live:
                self._new_pass()
                continue
            mix, alpha = self.mix_and_alpha()
            weights = np.array([self.walks[i].remaining for i in live], dtype=np.float64) ** alpha
            chosen = self.rng.choice(len(live), size=min(mix, len(live)), replace=False, p=weights / weights.sum())
            shards = [live[c] for c in chosen]
            w = np.array([self.walks[i].remaining for i in shards], dtype=np.float64) ** alpha
            counts = self.rng.multinomial(n - len(picks), w / w.sum())
            for i, c in zip(shards, counts):
                walk = self.walks[i]
                picks.extend((i, walk.next_block()) for _ in range(min(int(c), walk.remaining)))
        picks = picks[:n]
        order = self.rng.permutation(len(picks))
        return [picks[j] for j in order]

    def next_batch(self, global_tokens, seq_len, grad_accum_steps):
        """This rank's (x, y), int64 (local_tokens // seq_len, seq_len) on device; y is x shifted by one."""
        if seq_len != self.seq_len:
            raise RunInputError(f"coprime_loader: seq_len {seq_len}, built for TRAIN_SEQ_LEN={self.seq_len}")
        local_seqs = global_tokens // (self.world_size * grad_accum_steps * seq_len)
        picks = self.plan(local_seqs * self.world_size)[self.rank * local_seqs : (self.rank + 1) * local_seqs]
        self.calls += 1
        self.batches = self.calls // grad_accum_steps  # optimizer steps so far: the ramp's clock
        rows = []
        for i, block in picks:
            a = self.walks[i].phase + block * seq_len
            rows.append(np.asarray(self._tokens(i)[a : a + seq_len + 1]))
        local = torch.from_numpy(np.stack(rows).astype(np.int64))  # (local_seqs, seq_len + 1)
        if local.numel() and int(local.max()) >= self.h.vocab_size:
            raise RunInputError(f"{self.h.train_files}: token id {int(local.max())}, expected ids below "
                                f"VOCAB_SIZE={self.h.vocab_size}")
        if self.device.type == "cuda":
            local = local.pin_memory()
        local = local.to(self.device, non_blocking=True)
        return local[:, :-1], local[:, 1:]
