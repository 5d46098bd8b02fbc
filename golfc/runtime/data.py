# ==================================================================================================
# core/data: token shards, validation tokens, tokenizer and bits-per-byte lookup tables
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

# Shard format: 256 little-endian int32 header ([0] magic, [1] version, [2] num_tokens), then
# num_tokens little-endian uint16 tokens. Each document is [BOS=1] + tokens, no EOS.
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_BYTES = 256 * 4


def read_shard_header(path):
    """num_tokens of one shard after checking its header and size; a malformed file is a one-line error."""
    if not os.path.isfile(path):
        raise RunInputError(f"{path}: not a file, expected a token shard")
    header = np.fromfile(path, dtype="<i4", count=256)
    if header.size != 256:
        raise RunInputError(f"{path}: {os.path.getsize(path)} bytes, shorter than the {SHARD_HEADER_BYTES}-byte header")
    if int(header[0]) != SHARD_MAGIC:
        raise RunInputError(f"{path}: magic {int(header[0])}, expected {SHARD_MAGIC}")
    if int(header[1]) != SHARD_VERSION:
        raise RunInputError(f"{path}: version {int(header[1])}, expected {SHARD_VERSION}")
    num_tokens = int(header[2])
    expected = SHARD_HEADER_BYTES + 2 * num_tokens
    actual = os.path.getsize(path)
    if num_tokens < 0 or actual != expected:
        raise RunInputError(f"{path}: {actual} bytes, expected {expected} "
                            f"({SHARD_HEADER_BYTES}-byte header + 2 * {num_tokens} tokens)")
    return num_tokens


def load_data_shard(path, vocab_size=None):
    """All tokens of one shard as a uint16 CPU tensor; with vocab_size, every id must be below it."""
    num_tokens = read_shard_header(path)
    tokens = np.fromfile(path, dtype="<u2", count=num_tokens, offset=SHARD_HEADER_BYTES)
    if vocab_size is not None and tokens.size and int(tokens.max()) >= vocab_size:
        raise RunInputError(f"{path}: token id {int(tokens.max())}, expected ids below VOCAB_SIZE={vocab_size}")
    return torch.from_numpy(tokens)


def shard_files(pattern):
    """Sorted shard paths of a glob; none found is a one-line FileNotFoundError naming the glob."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no data shards match {pattern} (check DATA_PATH)")
    return files


def check_shards(pattern):
    """Every shard of a glob checked by its header and size (no token reads): the total token count. A corrupt last
    shard fails at start-up, not hours into training when the stream reaches it."""
    total = sum(read_shard_header(f) for f in shard_files(pattern))
    if total == 0:
        raise RunInputError(f"{pattern}: every shard is empty, expected tokens")
    return total


def load_validation_tokens(pattern, seq_len, vocab_size=None):
    """All validation shards concatenated, cut to a multiple of seq_len plus one (int32, CPU)."""
    tokens = torch.cat([load_data_shard(f, vocab_size) for f in shard_files(pattern)])
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    if usable <= 0:
        raise RunInputError(f"{pattern}: {tokens.numel()} validation tokens, too few for TRAIN_SEQ_LEN={seq_len}")
    return tokens[: usable + 1].to(torch.int32)


# --------------------------------------------------------------------------------------------------
# Tokenizer and BPB tables: val_bpb = (val_loss / ln 2) * (tokens / bytes), bytes counted per target
# token from the piece table (not by decoding), so that the count is exact and tokenizer-agnostic.
# --------------------------------------------------------------------------------------------------
def load_tokenizer(h):
    if not os.path.isfile(h.tokenizer_path):
        raise FileNotFoundError(f"TOKENIZER_PATH={h.tokenizer_path}: no such file")
    try:
        sp = spm.SentencePieceProcessor(model_file=h.tokenizer_path)
    except (RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunInputError(f"TOKENIZER_PATH={h.tokenizer_path}: not a SentencePiece model ({reason})") from None
    if sp.vocab_size() != h.vocab_size:
        raise RunInputError(f"{h.tokenizer_path}: tokenizer vocab_size is {sp.vocab_size()}, but VOCAB_SIZE={h.vocab_size}")
    return sp


def build_bpb_luts(sp, vocab_size, device):
    """(base_bytes int16, has_leading_space bool, is_boundary bool), each (vocab_size,), on device.

    bytes(target) = base_bytes[target] + (has_leading_space[target] and not is_boundary[previous]):
    the U+2581 word marker stands for one space byte, except right after a boundary (BOS/control).
    """
    base_bytes = np.zeros(vocab_size, dtype=np.int16)
    has_leading_space = np.zeros(vocab_size, dtype=np.bool_)
    is_boundary = np.ones(vocab_size, dtype=np.bool_)  # ids past the tokenizer's table count as boundaries
    for t in range(min(sp.vocab_size(), vocab_size)):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue  # 0 bytes, boundary
        is_boundary[t] = False
        if sp.is_byte(t):
            base_bytes[t] = 1  # byte-fallback piece <0xNN>
            continue
        piece = sp.id_to_piece(t)
        if piece.startswith("\u2581"):
            has_leading_space[t] = True
            piece = piece[1:]
        base_bytes[t] = len(piece.encode("utf-8"))
    return tuple(torch.from_numpy(a).to(device) for a in (base_bytes, has_leading_space, is_boundary))


def target_bytes(prev_ids, target_ids, luts):
    """UTF-8 bytes of each target token given the token before it; any shape, int16."""
    base_bytes, has_leading_space, is_boundary = luts
    return base_bytes[target_ids] + (has_leading_space[target_ids] & ~is_boundary[prev_ids]).to(torch.int16)


# --------------------------------------------------------------------------------------------------
# Evaluation windows: the eval_windows slot plans them, the eval adapter (a scorer) scores them
# --------------------------------------------------------------------------------------------------
class EvalWindows:
    """The windows an evaluation scores. Span (start, first_scored) reads tokens start .. start + window
    (inputs start .. start + window - 1) and scores targets first_scored + 1 .. start + window; over all
    spans every target 1 .. len(val_tokens) - 1 is scored exactly once. batch_seqs windows per forward on each
    rank; pad: pad the last batch to batch_seqs rows (one shape, so a compiled model compiles once)."""

    def __init__(self, window, spans, batch_seqs, pad):
        self.window, self.spans, self.batch_seqs, self.pad = window, spans, batch_seqs, pad


def rank_share(items, ctx):
    """This rank's contiguous share of a sequence (the ranks in order cover it exactly once)."""
    return items[len(items) * ctx.rank // ctx.world_size : len(items) * (ctx.rank + 1) // ctx.world_size]


def window_batches(plan, spans, val_tokens, device):
    """Yield (x, y, batch) over `spans` in runs of plan.batch_seqs: x, y (rows, window) int64 on device;
    batch lists the spans of the real rows (with plan.pad, copies of the last window fill the last batch)."""
    offsets = torch.arange(plan.window + 1)
    for b in range(0, len(spans), plan.batch_seqs):
        batch = spans[b : b + plan.batch_seqs]
        padding = [batch[-1][0]] * (plan.batch_seqs - len(batch)) if plan.pad else []
        starts = torch.tensor([s for s, _ in batch] + padding)
        tokens = val_tokens[starts[:, None] + offsets].to(device, torch.int64, non_blocking=True)
        yield tokens[:, :-1], tokens[:, 1:], batch


# The score ledger: ledger_scores counts the optimizer steps (any torch optimizer) a scorer takes while it scores.
SCORE_LEDGER = {"updates": 0}


def ledger_part(positions, nll, nbytes, seen=-1):
    """A scored piece with its ledger: per position `updates`, the optimizer steps taken before it was scored (when),
    and `seen`, the last target any update behind its score learned from (-1: none; declared by the scorer, a scalar
    or one per position). Score-first holds where seen < position."""
    seen = torch.as_tensor(seen, device=positions.device).expand_as(positions)
    return positions, nll, nbytes, torch.full_like(positions, SCORE_LEDGER["updates"]), seen


def span_scores(plan, batch, nll, nbytes, device, seen=-1):
    """Ledger parts of each real row of a batch: the columns from its first scored target on. seen: -1, or the last
    position the updates behind the scores learned from (an int, or one per row: SLOT's per-window deltas)."""
    out = []
    for i, (start, first_scored) in enumerate(batch):
        keep = first_scored - start  # columns before this are context, scored by an earlier window
        positions = torch.arange(first_scored + 1, start + plan.window + 1, device=device)
        out.append(ledger_part(positions, nll[i, keep:], nbytes[i, keep:], seen if isinstance(seen, int) else seen[i]))
    return out


def ledger_scores(model, val_tokens, h, ctx, final):
    """score_validation (the eval_adapter slot) with the optimizer steps it takes counted into the ledger."""
    from torch.optim.optimizer import register_optimizer_step_post_hook  # sees every torch optimizer step

    SCORE_LEDGER["updates"] = 0
    counter = register_optimizer_step_post_hook(lambda *_: SCORE_LEDGER.update(updates=SCORE_LEDGER["updates"] + 1))
    try:
        return score_validation(model, val_tokens, h, ctx, final)
    finally:
        counter.remove()


def collect_scores(parts, device):
    """Scores from ledger parts; empty when this rank scored nothing (more ranks than windows)."""
    empty = torch.empty(0, device=device)
    parts = parts or [ledger_part(empty.long(), empty.float(), empty.to(torch.int16))]
    return Scores(*(torch.cat(column) for column in zip(*parts)))
