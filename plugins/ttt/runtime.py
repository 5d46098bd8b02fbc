# ==================================================================================================
# plugins/ttt: legal score-first test-time training (PR #461 -> #549): the validation stream in chunks of
# TTT_CHUNK_TOKENS; chunk k's evaluation windows (eval_windows: plain, or sliding_window's) are scored
# under no_grad, their scores committed, and only then (unless k is the last chunk) every weight takes
# TTT_EPOCHS passes of SGD over chunk k's tokens
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import ensure_positions  # editors and tests only: blanked when emitted

from golfc.runtime.data import collect_scores, rank_share, span_scores, target_bytes, window_batches
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def ttt_chunks(spans, chunk_tokens):
    """Spans grouped by the chunk of their first scored target: [(k, spans of chunk k)] in stream order.
    A window whose first scored target is first + 1 belongs to chunk first // chunk_tokens, so every target
    it scores lies after every target that chunks before k train on."""
    chunks = {}
    for span in spans:
        chunks.setdefault(span[1] // chunk_tokens, []).append(span)
    return sorted(chunks.items())


def ttt_sequences(val_tokens, k, chunk_tokens, seq_len, last=None):
    """Chunk k's training sequences (n, seq_len + 1): targets k * C + 1 .. min((k + 1) * C, last), whole sequences
    only (last: the last target training may use; default the stream's last)."""
    C, T = chunk_tokens, seq_len
    end = min((k + 1) * C, val_tokens.numel() - 1 if last is None else last)
    n = max((end - k * C) // T, 0)
    if n == 0:
        return val_tokens.new_empty((0, T + 1))
    return val_tokens[k * C : k * C + n * T + 1].unfold(0, T + 1, T)  # (n, T + 1), views


def ttt_train_chunk(model, params, optimizer, sequences, ctx, epochs, batch_seqs, grad_clip):
    """`epochs` passes over this rank's share of the sequences, `batch_seqs` per step; gradients averaged over
    ranks and their norm clipped at grad_clip (0: off). Every rank takes the same number of steps (a rank whose
    share ran out adds a zero gradient)."""
    mine = rank_share(sequences, ctx)
    per_rank = -(-len(sequences) // ctx.world_size)
    steps = -(-per_rank // batch_seqs)
    model.train()
    for _ in range(epochs):
        for s in range(steps):
            batch = mine[s * batch_seqs : (s + 1) * batch_seqs].to(ctx.device, torch.int64)
            optimizer.zero_grad(set_to_none=False)
            if batch.numel():
                with bf16_autocast(ctx.device):
                    loss = model(batch[:, :-1], batch[:, 1:])
                loss.backward()
            if ctx.distributed:  # every rank steps, with the average over the ranks that had data
                for p in params:
                    dist.all_reduce(p.grad)
                    p.grad /= ctx.world_size
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
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


def score_sgd_chunks(model, val_tokens, h, ctx):
    """TTT_MODE=sgd's final evaluation: chunk k's windows scored, then (unless k is the last) every weight trained
    on chunk k; the weights the evaluation found are restored at the end."""
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
        sequences = ttt_sequences(val_tokens, k, h.ttt_chunk_tokens, h.train_seq_len)
        if index + 1 < len(chunks) and h.ttt_epochs > 0 and len(sequences):  # then train on it (never the last)
            for group in optimizer.param_groups:  # cosine over the chunks
                group["lr"] = h.ttt_lr * 0.5 * (1 + math.cos(math.pi * index / max(len(chunks) - 1, 1)))
            ttt_train_chunk(model, params, optimizer, sequences, ctx, h.ttt_epochs, h.ttt_batch_seqs, h.ttt_grad_clip)
            seen = k * h.ttt_chunk_tokens + sequences.size(0) * h.train_seq_len  # targets k * C + 1 .. this
    base.load_state_dict(saved)
    for p in params:
        p.grad = None
    model.train(was_training)
    return collect_scores(parts, ctx.device)
