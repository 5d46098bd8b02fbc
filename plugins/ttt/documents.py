# ==================================================================================================
# plugins/ttt, per-document modes: LoRA adapters per document, scored chunk by chunk before each adapter step
# (TTT_MODE=lora), and the same with phased global SGD of every weight on the documents scored so far (phased);
# then the eval_adapter that picks the mode
# ==================================================================================================
from golfc_plugins.plain_eval.runtime import (  # editors and tests only: blanked when emitted
    ensure_positions,
    score_plain_windows,
)
from golfc_plugins.ttt.runtime import (  # editors and tests only: blanked when emitted
    score_sgd_chunks,
    ttt_sequences,
    ttt_train_chunk,
)

from golfc.runtime.data import collect_scores, ledger_part, rank_share, target_bytes
from golfc.runtime.model import rms_norm  # editors and tests only: blanked when emitted
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted
from golfc.runtime.probe import probe_rows  # editors and tests only: blanked when emitted

# --------------------------------------------------------------------------------------------------
# TTT_MODE=lora (2026-03-17_LoRA_TTT; targets and scaling of PR #1530 / #1767): per-document rank-r LoRA adapters
# on the TTT_LORA_TARGETS modules, reset for each document; each document is scored in chunks of TTT_LORA_CHUNK
# targets, and after a chunk's NLL is committed its adapters take one Adam step on that chunk's loss. Documents
# start at BOS (id 1) and see no context from other documents. The base weights are frozen and untouched.
# --------------------------------------------------------------------------------------------------
TTT_BOS_ID = 1
if Hyperparameters.ttt_mode != "sgd" and Hyperparameters.ttt_lora_chunk > Hyperparameters.train_seq_len:
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
    """One rank-r adapter per document row of a batch: delta(x) = (x A_b^T) B_b^T * scale, B zero at the start
    (the model is unchanged until the first step); scale = TTT_LORA_ALPHA / r (1 when the alpha is 0)."""

    def __init__(self, seeds, in_features, out_features, h, device):
        super().__init__()
        rank = h.ttt_lora_rank
        # each row's A drawn from its own document's seed: the same whichever batch or rank the document lands in
        a = torch.stack([torch.randn(rank, in_features, generator=torch.Generator().manual_seed(s)) for s in seeds])
        self.A = nn.Parameter((a / in_features ** 0.5).to(device))
        self.B = nn.Parameter(torch.zeros(len(seeds), out_features, rank, device=device))
        self.scale = h.ttt_lora_alpha / rank if h.ttt_lora_alpha > 0 else 1.0

    def delta(self, x):  # x (rows, T, in) -> (rows, T, out)
        return torch.bmm(torch.bmm(x, self.A.to(x.dtype).transpose(1, 2)), self.B.to(x.dtype).transpose(1, 2)) * self.scale

    def hook(self, module, inputs, out):  # forward hook: the adapted module's first input -> its output
        return out + self.delta(inputs[0])


def ttt_lora_sites(base, h):
    """[(name, module, in_features, out_features)] adapted for TTT_LORA_TARGETS: a target names modules by the end of
    their dotted name. A linear (c_q, c_k, c_v, attn.proj, mlp.fc, ...) adapts its own input -> output; `attn` and
    `mlp` adapt in parallel, from the sublayer's normed input to its output (the records' O and MLP adapters);
    `head` adapts the final normed hidden state -> the logits (module None: GPT.head is patched)."""
    d, sites = h.model_dim, []
    for target in [t for t in h.ttt_lora_targets.split(",") if t]:
        if target == "head":
            sites.append(("head", None, d, h.vocab_size))
            continue
        found = [(n, m) for n, m in base.named_modules() if n == target or n.endswith("." + target)]
        if not found:
            raise RunInputError(f"TTT_LORA_TARGETS={h.ttt_lora_targets}: {target!r} names no module of this "
                                "model, expected the end of a module name (c_q, c_k, c_v, attn, mlp, mlp.fc, ...) or head")
        sites += [(n, m, getattr(m, "in_features", d), getattr(m, "out_features", d)) for n, m in found]
    return sites


class TTTTargetsCheck(RunEvents):
    """The document modes' TTT_LORA_TARGETS checked against the model when it is made, so that a target naming no
    module is one line at start-up, not after training."""

    def __init__(self, model, h, ctx):
        super().__init__(model, h, ctx)
        if h.ttt_mode != "sgd":
            ttt_lora_sites(model, h)


def ttt_attach_adapters(base, sites, adapters):
    """Hooks the adapters in; returns the undo callbacks (hooks removed, GPT.head restored)."""
    undo = []
    for (_, module, _, _), adapter in zip(sites, adapters):
        if module is not None:
            undo.append(module.register_forward_hook(adapter.hook).remove)
            continue
        head = base.head  # the class's method: the tied or untied head of the final normed hidden state

        def head_with_adapter(hidden, head=head, adapter=adapter):
            return head(hidden) + adapter.delta(rms_norm(hidden))

        base.head = head_with_adapter  # an instance attribute: every path to the logits (fused loss too) takes it
        undo.append(lambda: delattr(base, "head"))
    return undo


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


def score_lora_documents(model, val_tokens, docs, h, ctx, seen_before=-1):
    """Score-first per-document LoRA TTT over this rank's share of `docs`, TTT_LORA_BATCH documents per batch;
    returns (positions, nll, nbytes) ledger parts. seen_before: the last target the base weights learned from
    (phased mode's global SGD; -1: none)."""
    base = getattr(model, "_orig_mod", model)  # eager: the adapters are forward hooks
    sites = ttt_lora_sites(base, h)
    # longest first (a batch runs as many chunks as its longest document); rows never mix, so which documents share
    # a batch changes no score
    docs = rank_share(sorted(docs, key=lambda d: d[0] - d[1]), ctx)
    parts, C = [], h.ttt_lora_chunk
    for b in range(0, len(docs), h.ttt_lora_batch):
        batch = docs[b : b + h.ttt_lora_batch]
        batch = batch + [(0, 0)] * (h.ttt_lora_batch - len(batch))  # one shape; empty rows score nothing
        adapters = [TTTLoRA([h.seed * 7_919 + 104_729 * start + i for start, _ in batch], fan_in, fan_out, h, ctx.device)
                    for i, (_, _, fan_in, fan_out) in enumerate(sites)]
        undo = ttt_attach_adapters(base, sites, adapters)
        optimizer = torch.optim.AdamW([p for a in adapters for p in a.parameters()], lr=h.ttt_lora_lr,
                                      betas=(h.ttt_beta1, h.ttt_beta2), weight_decay=h.ttt_weight_decay)
        # per row: the last target its score's updates learned from (its adapter's, else the base weights')
        seen = torch.full((len(batch),), seen_before, dtype=torch.int64, device=ctx.device)
        try:
            for c in range(max(-(-(end - start) // C) for start, end in batch)):
                x, y, scored, positions = (t.to(ctx.device) for t in ttt_lora_rows(val_tokens, batch, c, h))
                with bf16_autocast(ctx.device):
                    nll = base(x, y, reduction="none").float()  # (rows, T)
                targets = positions.masked_fill(~scored, -1)  # (rows, T): the target each column scored, -1: none
                probe_rows(targets)  # golfc verify's probe: these rows' distributions
                parts.append(ledger_part(positions[scored], nll.detach()[scored].clone(),
                                         target_bytes(x, y, ctx.luts)[scored], seen[:, None].expand_as(x)[scored]))
                per_doc = (nll * scored).sum(1) / scored.sum(1).clamp(min=1)  # committed above; now adapt on it
                optimizer.zero_grad(set_to_none=True)
                per_doc.sum().backward()  # rows are independent: each adapter gets its own document's gradient
                optimizer.step()
                # ledger: each row's adapter has now learned from its document's targets up to this chunk's last
                seen = torch.where(scored.any(1), targets.amax(1), seen)
        finally:
            for fn in undo:
                fn()
    return parts


# --------------------------------------------------------------------------------------------------
# TTT_MODE=phased (PR #1610 -> PR #1626, 2026-04-27 PR #1855): per-document LoRA TTT as above, and at
# PHASED_TTT_NUM_PHASES boundaries spread over the first PHASED_TTT_PREFIX_DOCS documents every weight takes global
# SGD on all documents scored so far (cumulative), then scoring resumes on the updated weights.
# Phases follow the stream: documents 0 .. b - 1 are scored before the SGD at boundary b, and that SGD trains on
# targets 1 .. (document b - 1's last) only, so no score ever depends on a later token (C1). The records instead
# queue documents by length, longest first, so that their prefix is the longest documents and a document's
# phase depends on every document's length. Inside a phase golfc batches by length too (no score changes).
# --------------------------------------------------------------------------------------------------
def phased_segments(docs, h):
    """[(the documents scored in segment s, the last target the global SGD after it trains on, or None)]: segments
    end at the phase boundaries prefix * (p + 1) // phases (prefix = min(PHASED_TTT_PREFIX_DOCS, documents)); the
    last segment is the rest, with no SGD after it."""
    prefix, phases = min(h.phased_ttt_prefix_docs, len(docs)), h.phased_ttt_num_phases
    bounds = sorted({prefix * (p + 1) // phases for p in range(phases)} - {0, len(docs)})
    edges = [0, *bounds, len(docs)]
    return [(docs[edges[i] : edges[i + 1]], docs[edges[i + 1] - 1][1] if edges[i + 1] in bounds else None)
            for i in range(len(edges) - 1)]


def ttt_global_sgd(model, params, val_tokens, last, h, ctx):
    """Every weight in `params`: GLOBAL_TTT_EPOCHS of SGD (momentum GLOBAL_TTT_MOMENTUM, a fresh optimizer per phase
    as in the records) over targets 1 .. last in chunks of GLOBAL_TTT_CHUNK_TOKENS, the rate on a cosine over the
    chunks from GLOBAL_TTT_LR; returns the last target trained on."""
    for p in params:
        p.requires_grad_(True)
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.SGD(params, lr=h.global_ttt_lr, momentum=h.global_ttt_momentum)
    chunks, trained = -(-last // h.global_ttt_chunk_tokens), -1
    for k in range(chunks):
        sequences = ttt_sequences(val_tokens, k, h.global_ttt_chunk_tokens, h.train_seq_len, last)
        if not len(sequences):
            continue
        for group in optimizer.param_groups:
            group["lr"] = h.global_ttt_lr * 0.5 * (1 + math.cos(math.pi * k / max(chunks - 1, 1)))
        ttt_train_chunk(model, params, optimizer, sequences, ctx, h.global_ttt_epochs, h.global_ttt_batch_seqs,
                        h.global_ttt_grad_clip)
        trained = k * h.global_ttt_chunk_tokens + sequences.size(0) * h.train_seq_len
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    return trained


def score_phased_documents(model, val_tokens, params, h, ctx):
    """Phased TTT: each segment's documents scored with per-document LoRA, then global SGD on every document
    scored so far; returns ledger parts."""
    parts, seen, scored = [], -1, 0  # seen: the last target the base weights have learned from
    for phase, (docs, last) in enumerate(phased_segments(ttt_documents(val_tokens), h)):
        parts += score_lora_documents(model, val_tokens, docs, h, ctx, seen)
        scored += len(docs)
        if last is not None and h.global_ttt_epochs > 0:
            seen = max(seen, ttt_global_sgd(model, params, val_tokens, last, h, ctx))
            log0(f"ttt_phase:{phase + 1} scored_docs:{scored} global_sgd_targets:1..{seen}")
    return parts


def score_adapted_documents(model, val_tokens, h, ctx):
    """The lora and phased modes' final evaluation: base weights frozen while the adapters learn (phased: unfrozen
    only inside each global SGD), and the weights, flags and mode the evaluation found restored at the end."""
    base = getattr(model, "_orig_mod", model)
    was_training, flags = base.training, [(p, p.requires_grad) for p in base.parameters()]
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()} if h.ttt_mode == "phased" else None
    base.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        ensure_positions(model, h.train_seq_len)
        if h.ttt_mode == "phased":
            parts = score_phased_documents(model, val_tokens, [p for p, flag in flags if flag], h, ctx)
        else:
            parts = score_lora_documents(model, val_tokens, ttt_documents(val_tokens), h, ctx)
        return collect_scores(parts, ctx.device)
    finally:
        if saved is not None:
            base.load_state_dict(saved)
        for p, flag in flags:
            p.requires_grad_(flag)
        base.train(was_training)


def score_then_train(model, val_tokens, h, ctx, final=False):
    """The eval_adapter: plain scores of the planned windows, except in the final evaluation: score-first TTT between
    chunks (TTT_MODE=sgd), per-document LoRA TTT (lora) or LoRA with phased global SGD (phased). The weights the
    evaluation found are restored at the end (the artifact is what was exported, not the adapted model)."""
    if not final:
        return score_plain_windows(model, val_tokens, h, ctx, final)
    if h.ttt_mode == "sgd":
        return score_sgd_chunks(model, val_tokens, h, ctx)
    return score_adapted_documents(model, val_tokens, h, ctx)
