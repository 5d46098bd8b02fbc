# ==================================================================================================
# plugins/ttt: legal score-first test-time training (PR #461 -> #549): the validation stream in chunks of
# TTT_CHUNK_TOKENS; chunk k's evaluation windows (eval_windows: plain, or sliding_window's) are scored
# under no_grad, their scores committed, and only then (unless k is the last chunk) every weight takes
# TTT_EPOCHS passes of SGD over chunk k's tokens
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import (  # editors and tests only: blanked when emitted
    ensure_positions,
    score_plain_windows,
)

from golfc.runtime.data import collect_scores, ledger_part, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def ttt_chunks(spans, chunk_tokens):
    """Spans grouped by the chunk of their first scored target: [(k, spans of chunk k)] in stream order.
    A window whose first scored target is first + 1 belongs to chunk first // chunk_tokens, so every target
    it scores lies after every target that chunks before k train on."""
    chunks = {}
    for span in spans:
        chunks.setdefault(span[1] // chunk_tokens, []).append(span)
    return sorted(chunks.items())


def ttt_sequences(val_tokens, k, h):
    """Chunk k's training sequences (n, TRAIN_SEQ_LEN + 1): targets k * C + 1 .. (k + 1) * C, whole sequences."""
    C, T = h.ttt_chunk_tokens, h.train_seq_len
    end = min((k + 1) * C, val_tokens.numel() - 1)
    n = max((end - k * C) // T, 0)
    if n == 0:
        return val_tokens.new_empty((0, T + 1))
    return val_tokens[k * C : k * C + n * T + 1].unfold(0, T + 1, T)  # (n, T + 1), views


def ttt_train_chunk(model, params, optimizer, sequences, h, ctx):
    """TTT_EPOCHS passes over this rank's share of the sequences; gradients averaged over ranks. Every rank
    takes the same number of steps (a rank whose share ran out adds a zero gradient)."""
    mine = rank_share(sequences, ctx)
    per_rank = -(-len(sequences) // ctx.world_size)
    steps = -(-per_rank // h.ttt_batch_seqs)
    model.train()
    for _ in range(h.ttt_epochs):
        for s in range(steps):
            batch = mine[s * h.ttt_batch_seqs : (s + 1) * h.ttt_batch_seqs].to(ctx.device, torch.int64)
            optimizer.zero_grad(set_to_none=False)
            if batch.numel():
                with bf16_autocast(ctx.device):
                    loss = model(batch[:, :-1], batch[:, 1:])
                loss.backward()
            if ctx.distributed:  # every rank steps, with the average over the ranks that had data
                for p in params:
                    dist.all_reduce(p.grad)
                    p.grad /= ctx.world_size
            if h.ttt_grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, h.ttt_grad_clip)
            optimizer.step()
    model.eval()


def ttt_compile_warmup(model, params, h, ctx):
    """One forward and backward of a TTT-step shape on random tokens, never validation tokens, so that a
    compiled model compiles its TTT graph before the first chunk; no update, gradients zeroed."""
    synthetic = torch.randint(0, h.vocab_size, (h.ttt_batch_seqs, h.train_seq_len + 1), device=ctx.device)
    model.train()
    with bf16_autocast(ctx.device):
        model(synthetic[:, :-1], synthetic[:, 1:]).backward()
    for p in params:
        p.grad.zero_()
    model.eval()


# --------------------------------------------------------------------------------------------------
# TTT_MODE=lora (2026-03-17_LoRA_TTT): per-document rank-r LoRA adapters on every block's c_q and c_v, reset for
# each document; each document is scored in chunks of TTT_LORA_CHUNK targets, and after a chunk's NLL is
# committed its adapters take one Adam step on that chunk's loss. Documents start at BOS (id 1) and see no
# context from other documents. The base weights are frozen and untouched.
# --------------------------------------------------------------------------------------------------
TTT_BOS_ID = 1
if Hyperparameters.ttt_mode == "lora" and Hyperparameters.ttt_lora_chunk > Hyperparameters.train_seq_len:
    print(f"error: TTT_LORA_CHUNK={Hyperparameters.ttt_lora_chunk}, TRAIN_SEQ_LEN={Hyperparameters.train_seq_len}: "
          "expected TTT_LORA_CHUNK <= TRAIN_SEQ_LEN (a chunk's targets fit in one row)", file=sys.stderr)
    sys.exit(2)


def ttt_documents(val_tokens):
    """[(start, end)]: document d reads tokens start .. end - 1 and scores targets start + 1 .. end (its last
    target is the next document's BOS, or the stream's last token). Starts: position 0 and every BOS."""
    bos = torch.nonzero(val_tokens[1:-1] == TTT_BOS_ID).flatten() + 1
    starts = [0, *bos.tolist()]
    return list(zip(starts, [*starts[1:], val_tokens.numel() - 1]))


class TTTLoRA(nn.Module):
    """One rank-r adapter per document row of a batch for one linear: y += (x A_b^T) B_b^T, B zero at the start
    (the model is unchanged until the first step)."""

    def __init__(self, seeds, in_features, out_features, rank, device):
        super().__init__()
        # each row's A drawn from its own document's seed: the same whichever batch or rank the document lands in
        a = torch.stack([torch.randn(rank, in_features, generator=torch.Generator().manual_seed(s)) for s in seeds])
        self.A = nn.Parameter((a / in_features ** 0.5).to(device))
        self.B = nn.Parameter(torch.zeros(len(seeds), out_features, rank, device=device))

    def hook(self, module, inputs, out):  # forward hook of the adapted linear: out (rows, T, out_features)
        x = inputs[0]
        return out + torch.bmm(torch.bmm(x, self.A.to(x.dtype).transpose(1, 2)), self.B.to(x.dtype).transpose(1, 2))


def ttt_lora_rows(val_tokens, docs, c, h):
    """Chunk c of each document as one row of TRAIN_SEQ_LEN inputs: (x, y, scored mask, positions). The row's
    first token depends only on the document's start and c (never on where the document ends), so a target's
    context is fixed by the tokens before it. Rows of finished documents are all padding."""
    T, C = h.train_seq_len, h.ttt_lora_chunk
    x = torch.zeros(len(docs), T, dtype=torch.int64)
    y, scored, positions = torch.zeros_like(x), torch.zeros(len(docs), T, dtype=torch.bool), torch.zeros_like(x)
    for i, (start, end) in enumerate(docs):
        first, last = start + c * C + 1, min(start + (c + 1) * C, end)  # this chunk's targets
        if first > last:
            continue
        a = start + max(0, (c + 1) * C - T)  # the row's first input
        width = last - a
        x[i, :width], y[i, :width] = val_tokens[a:last], val_tokens[a + 1 : last + 1]
        positions[i, :width] = torch.arange(a + 1, last + 1)
        scored[i, first - a - 1 : width] = True
    return x, y, scored, positions


def score_lora_documents(model, val_tokens, h, ctx):
    """Score-first per-document LoRA TTT over this rank's share of the documents, TTT_LORA_BATCH documents per
    batch; returns (positions, nll, nbytes) pieces."""
    base = getattr(model, "_orig_mod", model)  # eager: the adapters are forward hooks
    linears = [m for name, m in base.named_modules() if name.endswith(("attn.c_q", "attn.c_v"))]
    # longest first (a batch runs as many chunks as its longest document); rows never mix, so which documents share
    # a batch changes no score
    docs = sorted(ttt_documents(val_tokens), key=lambda d: d[0] - d[1])
    docs, parts, C = rank_share(docs, ctx), [], h.ttt_lora_chunk
    for b in range(0, len(docs), h.ttt_lora_batch):
        batch = docs[b : b + h.ttt_lora_batch]
        batch = batch + [(0, 0)] * (h.ttt_lora_batch - len(batch))  # one shape; empty rows score nothing
        adapters = [TTTLoRA([h.seed * 7_919 + 104_729 * start + i for start, _ in batch], m.in_features, m.out_features,
                            h.ttt_lora_rank, ctx.device) for i, m in enumerate(linears)]
        handles = [m.register_forward_hook(a.hook) for m, a in zip(linears, adapters)]
        optimizer = torch.optim.Adam([p for a in adapters for p in a.parameters()], lr=h.ttt_lora_lr, betas=(0.9, 0.95))
        seen = torch.full((len(batch),), -1, dtype=torch.int64, device=ctx.device)  # per row: last target learned from
        try:
            for c in range(max(-(-(end - start) // C) for start, end in batch)):
                x, y, scored, positions = (t.to(ctx.device) for t in ttt_lora_rows(val_tokens, batch, c, h))
                with bf16_autocast(ctx.device):
                    nll = base(x, y, reduction="none").float()  # (rows, T)
                parts.append(ledger_part(positions[scored], nll.detach()[scored].clone(),
                                         target_bytes(x, y, ctx.luts)[scored], seen[:, None].expand_as(x)[scored]))
                per_doc = (nll * scored).sum(1) / scored.sum(1).clamp(min=1)  # committed above; now adapt on it
                optimizer.zero_grad(set_to_none=True)
                per_doc.sum().backward()  # rows are independent: each adapter gets its own document's gradient
                optimizer.step()
                # ledger: each row's adapter has now learned from its document's targets up to this chunk's last
                seen = torch.where(scored.any(1), positions.masked_fill(~scored, -1).amax(1), seen)
        finally:
            for handle in handles:
                handle.remove()
    return parts


def score_then_train(model, val_tokens, h, ctx, final=False):
    """Scores of the planned windows; in the final evaluation, with score-first TTT between chunks (TTT_MODE=sgd)
    or per-document LoRA TTT (lora). The weights the evaluation found are restored at the end (the artifact is
    what was exported, not the adapted model)."""
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    if h.ttt_mode == "lora":
        base = getattr(model, "_orig_mod", model)
        was_training, frozen = base.training, [(p, p.requires_grad) for p in base.parameters()]
        base.eval()
        for p, _ in frozen:
            p.requires_grad_(False)
        try:
            ensure_positions(model, h.train_seq_len)
            return collect_scores(score_lora_documents(model, val_tokens, h, ctx), ctx.device)
        finally:
            for p, flag in frozen:
                p.requires_grad_(flag)
            base.train(was_training)
    plan = eval_windows(val_tokens, h, ctx)
    ensure_positions(model, plan.window)
    was_training = model.training
    base = getattr(model, "_orig_mod", model)
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()}
    params = [p for p in base.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    ttt_compile_warmup(model, params, h, ctx)
    optimizer = torch.optim.SGD(params, lr=h.ttt_lr, momentum=h.ttt_momentum)
    chunks = ttt_chunks(plan.spans, h.ttt_chunk_tokens)
    parts, seen = [], -1  # seen: the last target any update so far trained on (the score ledger, core/data)
    model.eval()
    for index, (k, spans) in enumerate(chunks):
        with torch.no_grad(), bf16_autocast(ctx.device):  # score chunk k: committed before any update uses it
            for x, y, batch in window_batches(plan, rank_share(spans, ctx), val_tokens, ctx.device):
                nll = model(x, y, reduction="none").float().clone()  # kept: the model changes after this
                parts.extend(span_scores(plan, batch, nll, target_bytes(x, y, ctx.luts), ctx.device, seen))
        sequences = ttt_sequences(val_tokens, k, h)
        if index + 1 < len(chunks) and h.ttt_epochs > 0 and len(sequences):  # then train on it (never the last)
            for group in optimizer.param_groups:  # cosine over the chunks
                group["lr"] = h.ttt_lr * 0.5 * (1 + math.cos(math.pi * index / max(len(chunks) - 1, 1)))
            ttt_train_chunk(model, params, optimizer, sequences, h, ctx)
            seen = k * h.ttt_chunk_tokens + sequences.size(0) * h.train_seq_len  # targets k * C + 1 .. this
    base.load_state_dict(saved)
    for p in params:
        p.grad = None
    model.train(was_training)
    return collect_scores(parts, ctx.device)
