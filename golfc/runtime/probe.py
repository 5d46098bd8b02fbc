# ==================================================================================================
# core/probe: the verifier's probe mode (GOLFC_PROBE=tokens.npy GOLFC_PROBE_OUT=out.npz). The configured
# evaluation (score_validation, final=True, this run's batch size and world size) scores given token streams
# instead of the validation tokens and writes the NLL of every scored position; golfc verify compares them.
# Off unless GOLFC_PROBE is set: nothing here runs in a training or scoring run.
# ==================================================================================================
import json

from golfc.runtime.data import build_bpb_luts, load_tokenizer, span_scores
from golfc.runtime.model import GPT
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

# The probe's settings, read from the environment (a verifier's protocol, not hyperparameters of the run):
#   GOLFC_PROBE=tokens.npy         int array (N,) or (K, N): K streams of N tokens, each scored on its own
#   GOLFC_PROBE_OUT=out.npz        where rank 0 writes the results (default probe.npz)
#   GOLFC_PROBE_ARTIFACT=FILE      score with this artifact's weights (else the seeded initial weights)
#   GOLFC_PROBE_TRAIN_STEPS=N      first train N steps on training data and export the artifact, then load it
#   GOLFC_PROBE_ROWS=P,P,...       target positions whose full log-probability rows (V,) are written too
PROBE_TAP = {"rows": None, "logp": None, "found": None}


def probe_distribution(logp):
    """What a scorer whose scored distribution is not softmax(GPT.logits(...)) (a mixture, a cache) calls with
    its final log-probabilities (B, T, V), unnormalised if that is what it scores, just before span_scores: the
    probe's rows are then what was scored. Does nothing outside a probe that asked for rows."""
    if PROBE_TAP["rows"] is not None:
        PROBE_TAP["logp"] = logp.detach().float()


def probe_tapped_logits(self, hidden):
    """GPT.logits while a probe records rows: the model's own distribution is the scored one unless the scorer
    hands another to probe_distribution."""
    logits = PROBE_TAP["logits_fn"](self, hidden)
    PROBE_TAP["logp"] = F.log_softmax(logits.detach().float(), dim=-1)
    return logits


def probe_rows(positions):
    """While a probe records rows: each requested target's row of the last distribution, for a scorer whose forward
    scored target positions[b, t] (-1: none) in row b, column t. span_scores is tapped; other scorers call this."""
    logp, wanted = PROBE_TAP["logp"], PROBE_TAP["rows"] or ()
    for p in wanted if logp is not None and logp.shape[:2] == positions.shape else ():
        for b, t in (positions == p).nonzero()[:1].tolist():
            PROBE_TAP["found"][p] = logp[b, t].cpu()


def probe_tapped_span_scores(plan, batch, nll, nbytes, device, seen=-1):
    """span_scores while a probe records rows: real row i scores targets first_scored + 1 .. start + window."""
    columns, positions = torch.arange(1, plan.window + 1, device=nll.device), torch.full_like(nll, -1, dtype=torch.int64)
    for i, (start, first_scored) in enumerate(batch):
        positions[i] = torch.where(start + columns > first_scored, start + columns, -1)
    probe_rows(positions)
    return PROBE_TAP["span_scores_fn"](plan, batch, nll, nbytes, device, seen)


def probe_streams(path, vocab_size):
    if not os.path.isfile(path):
        raise RunInputError(f"GOLFC_PROBE={path}: no such file, expected a .npy array of token ids")
    streams = np.load(path)
    streams = streams[None] if streams.ndim == 1 else streams
    if streams.ndim != 2 or streams.shape[1] < 2 or streams.dtype.kind not in "iu":
        raise RunInputError(f"GOLFC_PROBE={path}: {streams.dtype} {streams.shape}, expected integer (N,) or (K, N), N >= 2")
    if streams.min() < 0 or streams.max() >= vocab_size:
        raise RunInputError(f"GOLFC_PROBE={path}: token ids outside 0..{vocab_size - 1}")
    return torch.from_numpy(streams.astype(np.int32))


def probe_eval(run):
    """Score every probe stream with the configured evaluation from the same weights and seed; rank 0 writes
    nll / rank (K, N) (NaN / -1 where unscored; position p is the target index), scored (K, N) counts, rows
    (K, R, V) log-probabilities at row_positions (NaN where no row was recorded), the plan of stream 0
    (window, spans, batch_seqs), settings (JSON) and whether the program claims document isolation."""
    h, ctx, env = run.h, run.ctx, os.environ
    streams = probe_streams(env["GOLFC_PROBE"], h.vocab_size)
    ctx.luts = build_bpb_luts(load_tokenizer(h), h.vocab_size, ctx.device)
    steps, artifact = int(env.get("GOLFC_PROBE_TRAIN_STEPS", "0") or 0), env.get("GOLFC_PROBE_ARTIFACT", "")
    if steps > 0:  # briefly trained weights, through the real export: the artifact is what gets probed
        prepare_training(run)
        loader = TrainLoader(h, ctx)
        for step in range(steps):
            train_step(run, step, 0.0, loader)
        artifact = export_artifact(run.base_model, h, ctx)
    if artifact:
        quant_obj = read_artifact(artifact, "GOLFC_PROBE_ARTIFACT")
        run.base_model.load_state_dict(dequantize_state_dict(quant_obj), strict=True)
    rows = [int(p) for p in env.get("GOLFC_PROBE_ROWS", "").split(",") if p.strip()]
    model = run.base_model if rows else run.model  # rows come from the eager model: a compiled graph cannot be tapped
    if rows:
        PROBE_TAP.update(rows=rows, logits_fn=GPT.logits, span_scores_fn=span_scores)
        GPT.logits, globals()["span_scores"] = probe_tapped_logits, probe_tapped_span_scores
    saved = {k: v.detach().clone() for k, v in run.base_model.state_dict().items()}
    K, N = streams.shape
    nll, rank = np.full((K, N), np.nan, np.float32), np.full((K, N), -1, np.int64)
    scored, found = np.zeros((K, N), np.int64), np.full((K, len(rows), h.vocab_size), np.nan, np.float32)
    try:
        for k in range(K):
            run.base_model.load_state_dict(saved)
            seed_everything(h.seed)
            PROBE_TAP.update(logp=None, found={})
            scores = score_validation(model, streams[k], h, ctx, True)
            mine = (scores.positions.cpu().numpy(), scores.nll.float().cpu().numpy(),
                    {p: r.numpy() for p, r in PROBE_TAP["found"].items()})
            shares = [mine] * ctx.world_size  # every rank's share once gathered
            if ctx.distributed:
                dist.all_gather_object(shares, mine)
            for r, (positions, values, rows_found) in enumerate(shares):
                np.add.at(scored[k], positions, 1)
                nll[k, positions], rank[k, positions] = values, r
                for i, p in enumerate(rows):
                    if p in rows_found:
                        found[k, i] = rows_found[p]
    finally:
        if rows:
            GPT.logits, globals()["span_scores"] = PROBE_TAP["logits_fn"], PROBE_TAP["span_scores_fn"]
            PROBE_TAP["rows"] = None
    plan = eval_windows(streams[0], h, ctx)
    settings = {k: v for k, v in vars(type(h)).items() if not k.startswith("_") and not callable(v)}
    if ctx.is_master:
        out = env.get("GOLFC_PROBE_OUT", "") or "probe.npz"
        np.savez(out, nll=nll, rank=rank, scored=scored, rows=found, row_positions=np.array(rows, np.int64),
                 window=plan.window, spans=np.array(plan.spans, np.int64).reshape(-1, 2), batch_seqs=plan.batch_seqs,
                 world_size=ctx.world_size, settings=json.dumps(settings, default=str),
                 document_isolated=bool(globals().get("DOCUMENT_ISOLATED", False)))
        log0(f"probe: {K} stream(s) of {N} tokens scored, {len(rows)} row(s) requested -> {out}")
