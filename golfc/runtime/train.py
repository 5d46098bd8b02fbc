# ==================================================================================================
# core/train: the run's phases — setup, optimizers, compile warmup and reset, timed training, export,
# roundtrip evaluation — and main(), which calls them in order
# ==================================================================================================
from golfc.runtime.data import build_bpb_luts, check_shards, load_tokenizer, load_validation_tokens, shard_files
from golfc.runtime.model import GPT, cast_params_for_training
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted


def program_source():
    """The readable source of this program: the self-extracting wrapper hands it over as __golfc_source__."""
    source = globals().get("__golfc_source__")
    if source is None:
        with open(__file__, encoding="utf-8") as f:
            source = f.read()
    return source


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def evaluate(model, val_tokens, h, ctx, final=False):
    """(val_loss in nats, val_bpb) over the whole validation stream; sums in fp64, reduced over ranks. final=True
    only for the scored artifact's evaluation: the one an adapting scorer (TTT, SLOT) may adapt in, and the one whose
    score ledger (core/data) is logged (adapted: scored after an update; violations: seen >= position)."""
    s = ledger_scores(model, val_tokens, h, ctx, final)
    totals = torch.stack([t.to(torch.float64).sum() for t in (s.nll, torch.ones_like(s.nll), s.nbytes,
                          s.updates > 0, s.seen >= 0, s.seen >= s.positions)]).to(ctx.device)
    if ctx.distributed:
        dist.all_reduce(totals)
    nll_sum, count, nbytes, adapted, declared, violations = totals.tolist()
    if int(count) != val_tokens.numel() - 1:
        raise RuntimeError(f"score_validation scored {int(count)} positions, expected {val_tokens.numel() - 1}")
    if final:  # golfc verify reads it: a violation is a score fed by an update computed from its own or a later token
        log0(f"score_ledger scored:{count:.0f} adapted:{adapted:.0f} declared:{declared:.0f} violations:{violations:.0f}")
    val_loss = nll_sum / count
    return val_loss, val_loss / math.log(2.0) * (count / nbytes)


def log_header(h):
    """The log file starts with the full source, then the Python and PyTorch versions and nvidia-smi."""
    log0(program_source(), console=False)
    log0("=" * 100, console=False)
    log0(f"Running Python {sys.version}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    try:
        smi = subprocess.run(["nvidia-smi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        log0(smi.stdout, console=False)
    except OSError:
        log0("nvidia-smi: not available", console=False)
    log0("=" * 100, console=False)


# --------------------------------------------------------------------------------------------------
# Export: calibration data for the quantizer, the quantizer, the compressor, the 16,000,000-byte budget
# --------------------------------------------------------------------------------------------------
ARTIFACT_BUDGET_BYTES = 16_000_000  # code + compressed model, decimal bytes (the challenge's cap)


class Calibration:
    """Calibration data a quantizer may draw on (GPTQ's Hessians): batches(count) yields the calibration_source slot's
    token batches (read only if a quantizer asks), recording the training clock of the last read and of finished():
    training stopped GPTQ_RESERVE_SECONDS early so that this fits inside MAX_WALLCLOCK_SECONDS."""

    def __init__(self, model, h, ctx, train_ms):
        self.model, self.h, self.ctx = model, h, ctx
        self.train_ms, self.t0 = train_ms, time.perf_counter()  # training clock at its stop; export start
        self.source = calibration_source.__name__.removesuffix("_batches")  # train_calibration, ar_selfgen, ...
        self.count, self.last_read_ms, self.done_ms = 0, None, None

    def clock_ms(self):
        """The training clock now: training time plus the time since export began (the last eval excluded)."""
        return self.train_ms + 1000.0 * (time.perf_counter() - self.t0)

    def batches(self, count):
        """Up to `count` token batches, int64 (b, T) on ctx.device."""
        for x in calibration_source(self.model, self.h, self.ctx, count):
            self.count += 1
            self.last_read_ms = self.clock_ms()
            yield x

    def finished(self):
        """A quantizer calls this when it no longer needs calibration data (Hessians all collected)."""
        self.done_ms = self.clock_ms()

    def log(self):
        if self.count == 0:
            return
        cap_ms = 1000.0 * self.h.max_wallclock_seconds
        done = self.done_ms if self.done_ms is not None else self.last_read_ms
        log0(f"calibration:{self.source} batches:{self.count} seconds:{(done - self.train_ms) / 1000.0:.2f} "
             f"last_data_read_ms:{self.last_read_ms:.0f} done_ms:{done:.0f} train_ms:{self.train_ms:.0f}")
        if cap_ms > 0 and done > cap_ms:
            log0(f"calibration:WARNING done at {done:.0f}ms, after MAX_WALLCLOCK_SECONDS={self.h.max_wallclock_seconds:g}: "
                 "raise GPTQ_RESERVE_SECONDS")


def serialize_artifact(quant_obj):
    """The quantizer's object as bytes (torch.save), before compression."""
    buf = io.BytesIO()
    torch.save(quant_obj, buf)
    return buf.getvalue()


def export_artifact(model, h, ctx, train_ms=0.0):
    """Write final_model.pt (the unquantized weights: kept whatever happens next) and the scored artifact
    final_model.<quant>.ptz; log the sizes. Over 16,000,000 bytes with the code, a budget_fitter (if any) shrinks it,
    else the run stops with both numbers (exit 2), the artifact and final_model.pt left on disk."""
    code_bytes = os.path.getsize(__file__)  # the file being run (the shipped wrapper when wrapped)
    state = model.state_dict()
    if ctx.is_master:
        torch.save(state, "final_model.pt")
        model_bytes = os.path.getsize("final_model.pt")
        log0(f"Serialized model: {model_bytes} bytes")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size: {model_bytes + code_bytes} bytes")
    calibration = Calibration(model, h, ctx, train_ms)
    # every rank: a quantizer may use collectives (GPTQ sums its Hessians over ranks)
    quant_obj, stats = quantize_model(model, state, h, ctx, calibration)
    calibration.log()
    raw = serialize_artifact(quant_obj)
    label = f"{QUANT_LABEL}+{COMPRESS_LABEL}"
    artifact = f"final_model.{QUANT_LABEL}.ptz"
    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    if ctx.is_master:
        blob = compress_bytes(raw)
        if len(blob) + code_bytes > ARTIFACT_BUDGET_BYTES and budget_fitter is not None:
            log0(f"fit_budget: {len(blob) + code_bytes} bytes > {ARTIFACT_BUDGET_BYTES}; fitting")
            quant_obj = budget_fitter(quant_obj, lambda obj: len(compress_bytes(serialize_artifact(obj))) + code_bytes, h)
            raw = serialize_artifact(quant_obj)
            blob = compress_bytes(raw)
        with open(artifact, "wb") as f:
            f.write(blob)
        artifact_bytes = os.path.getsize(artifact)
        ratio = stats["baseline_tensor_bytes"] / max(stats["payload_bytes"], 1)
        log0(f"Serialized model {label}: {artifact_bytes} bytes "
             f"(payload:{stats['payload_bytes']} raw_torch:{len(raw)} payload_ratio:{ratio:.2f}x)")
        log0(f"Total submission size {label}: {artifact_bytes + code_bytes} bytes")
        total.fill_(artifact_bytes + code_bytes)
    if ctx.distributed:
        dist.broadcast(total, src=0)  # every rank stops, or none
        dist.barrier()  # the artifact is on disk before any rank reads it back
    if total.item() > ARTIFACT_BUDGET_BYTES:
        raise RunInputError(f"{artifact}: {int(total.item()) - code_bytes} model bytes + {code_bytes} code bytes = "
                            f"{int(total.item())} > {ARTIFACT_BUDGET_BYTES}; final_model.pt keeps the unquantized weights "
                            "(add fit_budget, or a smaller model or quantizer)")
    return artifact


# --------------------------------------------------------------------------------------------------
# The run's phases: setup, validation data, model, optimizers, compile warmup, timed training, export,
# roundtrip evaluation; main() calls them in order, and EVAL_ONLY=ARTIFACT runs the set-up phases and the
# roundtrip evaluation alone (an eval-only rerun of a saved artifact).
# --------------------------------------------------------------------------------------------------
class Run:
    """What the training phases share: settings, run context, the model (plain and compiled) and, after
    prepare_training, its optimizers and trainable parameters. Not the validation tokens: they are handed only to
    the phases that evaluate, so no training step can reach them (and an auditor's data-flow reading sees that)."""

    def __init__(self, h, ctx, base_model, model):
        self.h, self.ctx = h, ctx
        self.base_model, self.model = base_model, model  # model: torch.compile(base_model) on CUDA
        self.optimizers, self.params = [], []
        self.events, self.phase_plan, self.averager = [], [], None  # run_events objects, [(fraction, phase)]
        self.train_ms = 0.0  # the training clock when train() stopped


def setup(h):
    """Distributed set-up, seeds, logging, shard checks: the run context."""
    ctx = init_distributed(h)
    seed_everything(h.seed)
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    h.train_files = os.path.join(h.data_path, "fineweb_train_*.bin")
    h.val_files = os.path.join(h.data_path, "fineweb_val_*.bin")
    for pattern in (h.train_files, h.val_files):
        check_shards(pattern)  # fail early on a missing, corrupt or empty shard, naming it
    setup_logging(ctx, h.run_id or str(uuid.uuid4()))
    if ctx.is_master:
        log_header(h)
    return ctx


def load_validation(h, ctx):
    """The tokenizer's BPB tables (into ctx.luts) and the validation tokens, returned on their own."""
    micro_tokens = ctx.world_size * ctx.grad_accum_steps * h.train_seq_len
    if h.train_batch_tokens % micro_tokens != 0:
        raise RunInputError(f"TRAIN_BATCH_TOKENS={h.train_batch_tokens} must be a multiple of 8 * TRAIN_SEQ_LEN={micro_tokens}")
    sp = load_tokenizer(h)
    ctx.luts = build_bpb_luts(sp, h.vocab_size, ctx.device)
    val_tokens = load_validation_tokens(h.val_files, h.train_seq_len, h.vocab_size)
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={h.tokenizer_path}")
    dataset = os.path.basename(os.path.normpath(h.data_path))
    log0(f"train_loader:dataset:{dataset} train_shards:{len(shard_files(h.train_files))}")
    log0(f"val_loader:shards pattern={h.val_files} tokens:{val_tokens.numel() - 1}")
    return val_tokens


def build_model(h, ctx):
    """The model, cast as the reference casts it, identical on every rank, and its compiled form: a Run."""
    base_model = GPT(h).to(ctx.device)
    cast_params_for_training(base_model, ctx.device)
    if ctx.distributed:  # identical seeds give identical weights; make it a guarantee
        for t in base_model.state_dict().values():
            dist.broadcast(t, src=0)
    log0(f"model_params:{sum(p.numel() for p in base_model.parameters())}")
    log0(f"world_size:{ctx.world_size} grad_accum_steps:{ctx.grad_accum_steps}")
    log0(f"attention_mode:{'gqa' if h.num_kv_heads != h.num_heads else 'mha'} "
         f"num_heads:{h.num_heads} num_kv_heads:{h.num_kv_heads}")
    compiled = compile_enabled(h, ctx.device)
    if compiled and h.compile_tuning:
        import torch._inductor.config as inductor_config

        inductor_config.coordinate_descent_tuning = True  # slower compile, sometimes faster kernels
    model = torch.compile(base_model, dynamic=False, fullgraph=True) if compiled else base_model
    run = Run(h, ctx, base_model, model)
    run.events = [cls(base_model, h, ctx) for cls in RUN_EVENTS]  # run_events slot, one object per plugin
    run.phase_plan = sorted((float(f), name) for events in run.events for name, f in events.phases.items())
    if any(not 0.0 <= f <= 1.0 for f, _ in run.phase_plan):
        raise RunInputError(f"run phases {run.phase_plan}: each needs a fraction in [0, 1]")
    return run


def prepare_training(run):
    """The optimizers (optimizer slot) and the log lines that describe the training run."""
    h = run.h
    run.optimizers = build_optimizers(run.base_model, h, run.ctx)
    run.params = [p for p in run.base_model.parameters() if p.requires_grad]
    log0(f"train_batch_tokens:{h.train_batch_tokens} train_seq_len:{h.train_seq_len} iterations:{h.iterations} "
         f"warmup_steps:{h.warmup_steps} max_wallclock_seconds:{h.max_wallclock_seconds:.3f}")
    log0(f"seed:{h.seed}")
    settings = {k: v for k, v in vars(type(h)).items() if not k.startswith("_") and not callable(v)}
    log0("hparams: " + " ".join(f"{k}={v}" for k, v in settings.items()))  # golfc's own: every effective setting
    log0(f"device:{run.ctx.device} compile:{compile_enabled(h, run.ctx.device)}")


def switch_phase(run, name, on):
    """Switch run phase `name` on or off: the model's phases (read by every forward), then each events object."""
    phases = set(run.base_model.phases)
    run.base_model.phases = tuple(sorted(phases | {name} if on else phases - {name}))
    for events in run.events:
        events.phase(run.base_model, name, on)


def train_step(run, step, elapsed_ms, loader, timed=False):
    """One optimizer step over grad_accum_steps micro-batches; returns this rank's mean loss. A timed step (not
    the compile warmup's) also updates the weight averager and fires the step events."""
    h, ctx, base_model = run.h, run.ctx, run.base_model
    lr_mul = apply_schedule(run.optimizers, step, elapsed_ms, h)
    if train_quant_hook is not None:
        train_quant_hook(base_model, step, lr_mul, h)
    loss_sum = torch.zeros((), device=ctx.device)
    weight = getattr(loader, "loss_weight", 1.0)  # data_loader slot: this rank's share of the step's tokens x world
    for _ in range(ctx.grad_accum_steps):
        x, y = loader.next_batch(h.train_batch_tokens, h.train_seq_len, ctx.grad_accum_steps)
        with bf16_autocast(ctx.device):
            loss = run.model(x, y)
        loss_sum += loss.detach()
        ((loss * weight if weight != 1.0 else loss) / ctx.grad_accum_steps).backward()
    if ctx.distributed:
        average_gradients(run.params, ctx)  # grad_average slot
    if h.grad_clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(run.params, h.grad_clip_norm)
    for opt in run.optimizers:
        opt.step()
    base_model.zero_grad(set_to_none=True)
    if timed and run.averager is not None:
        run.averager.update(base_model, step + 1, lr_mul)  # step + 1 = optimizer steps done
    for events in run.events if timed else ():
        events.step(base_model, step + 1, elapsed_ms, lr_mul)
    return loss_sum / ctx.grad_accum_steps


def compile_warmup(run):
    """WARMUP_STEPS real steps, so that nothing compiles inside the timed loop, and as many again with each run
    phase switched on in turn (the graphs the timed loop will switch to); then the phases are switched off and
    the initial weights, optimizer state and data position are restored."""
    h = run.h
    if h.warmup_steps <= 0:
        return
    initial_model = {k: v.detach().cpu().clone() for k, v in run.base_model.state_dict().items()}
    initial_optimizers = [copy.deepcopy(opt.state_dict()) for opt in run.optimizers]
    loader = TrainLoader(h, run.ctx)
    for phase in [None] + [name for _, name in run.phase_plan]:  # None: no phase yet; then cumulatively
        if phase is not None:
            switch_phase(run, phase, True)
            log0(f"warmup_phase:{phase}")
        for i in range(h.warmup_steps):
            train_step(run, 0, 0.0, loader)
            if h.warmup_steps <= 20 or (i + 1) % 10 == 0 or i + 1 == h.warmup_steps:
                log0(f"warmup_step:{i + 1}/{h.warmup_steps}")
    for _, name in reversed(run.phase_plan):
        switch_phase(run, name, False)
    run.base_model.load_state_dict(initial_model, strict=True)
    for opt, state in zip(run.optimizers, initial_optimizers):
        opt.load_state_dict(state)


def train(run, val_tokens):
    """The timed loop: the clock runs only around training steps; periodic validation outside it."""
    h, ctx, model = run.h, run.ctx, run.model
    loader = TrainLoader(h, ctx)
    run.averager = WeightAverager(run.base_model, h) if WeightAverager is not None else None
    pending = list(run.phase_plan)  # [(fraction, phase)] not yet switched on, earliest first
    # under a cap, training stops GPTQ_RESERVE_SECONDS early: the export's calibration runs inside the cap
    max_ms = 1000.0 * (h.max_wallclock_seconds - h.gptq_reserve_seconds) if h.max_wallclock_seconds > 0 else None
    # the training clock as every rank reads it (clock_ms): under a cap, the slowest rank's, so that all ranks stop
    # after the same step and set the same warmdown LR (their weights stay equal to the bit); uncapped, its own
    clock_group = host_group(ctx) if max_ms is not None else None
    train_ms, clock_ms, stop_after, step = 0.0, 0.0, None, 0
    for events in run.events:
        events.train_start(run)
    sync_device(ctx.device)
    t0 = time.perf_counter()
    while True:
        last_step = step == h.iterations or (stop_after is not None and step >= stop_after)
        if last_step or (h.val_loss_every > 0 and step % h.val_loss_every == 0):
            sync_device(ctx.device)
            train_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = evaluate(model, val_tokens, h, ctx)
            log0(f"step:{step}/{h.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{train_ms:.0f}ms step_avg:{train_ms / max(step, 1):.2f}ms")
            clock_ms = max_over_ranks(train_ms, clock_group)
            sync_device(ctx.device)
            t0 = time.perf_counter()
        if last_step:
            if stop_after is not None and step < h.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:{step}/{h.iterations}")
            break
        progress = clock_ms / max_ms if max_ms is not None else step / max(h.iterations, 1)
        while pending and progress >= pending[0][0]:  # the agreed clock: every rank switches at this step
            switch_phase(run, pending.pop(0)[1], True)
            log0(f"phase:{run.base_model.phases} step:{step} train_time:{clock_ms:.0f}ms")
        train_loss = train_step(run, step, clock_ms, loader, timed=True)
        step += 1
        # No device sync here: the host runs at most a step ahead, and a sync per step would leave the GPU
        # idle while the next step is launched. Only logging (.item()) syncs.
        clock_ms = max_over_ranks(train_ms + 1000.0 * (time.perf_counter() - t0), clock_group)
        if h.train_log_every > 0 and (step <= 10 or step % h.train_log_every == 0 or stop_after is not None):
            log0(f"step:{step}/{h.iterations} train_loss:{train_loss.item():.4f} "
                 f"train_time:{clock_ms:.0f}ms step_avg:{clock_ms / step:.2f}ms")
        if stop_after is None and max_ms is not None and clock_ms >= max_ms:
            stop_after = step
    if ctx.device.type == "cuda":
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 1024 // 1024} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 1024 // 1024} MiB")
    if run.averager is not None:
        run.averager.apply(run.base_model)
    for events in run.events:
        events.before_export(run.base_model, ctx)
    run.train_ms = train_ms  # the training clock at the stop: export's calibration continues it


def read_artifact(artifact, setting="EVAL_ONLY"):
    """The quantizer's object from a compressed artifact; a missing file (named by the `setting` that gave it) or one
    this program cannot read is one line (exit 2). dequantize_state_dict checks the object's format version."""
    if not os.path.isfile(artifact):
        raise RunInputError(f"{setting}={artifact}: no such artifact file")
    with open(artifact, "rb") as f:
        blob = f.read()
    try:
        raw = decompress_bytes(blob)
    except Exception as exc:  # zlib.error, lzma.LZMAError, zstd / brotli errors: no common base class
        raise RunInputError(f"{artifact}: not a {COMPRESS_LABEL} artifact of this program "
                            f"({type(exc).__name__}: {exc})") from None
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu")
    except Exception as exc:
        raise RunInputError(f"{artifact}: decompressed, but not a torch.save object ({type(exc).__name__})") from None


def roundtrip_eval(run, val_tokens, artifact):
    """The artifact read back from disk is what gets scored: the final (adapting) evaluation."""
    quant_obj = read_artifact(artifact)
    run.base_model.load_state_dict(dequantize_state_dict(quant_obj), strict=True)
    sync_device(run.ctx.device)
    t_eval = time.perf_counter()
    val_loss, val_bpb = evaluate(run.model, val_tokens, run.h, run.ctx, final=True)
    sync_device(run.ctx.device)
    name = f"final_{QUANT_LABEL}_{COMPRESS_LABEL}_roundtrip"
    log0(f"{name} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t_eval):.0f}ms")
    log0(f"{name}_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")


def teardown(ctx):
    if ctx.distributed:
        dist.barrier()  # no rank tears the group down while another still uses it
        dist.destroy_process_group()
        if ctx.device.type == "cpu":
            # gloo ranks sometimes abort in C++ teardown at exit ("terminate called without an active exception");
            # every result is written, so skip the teardown
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def main():
    h = Hyperparameters()
    ctx = setup(h)
    val_tokens = load_validation(h, ctx)
    run = build_model(h, ctx)
    probing = bool(os.environ.get("GOLFC_PROBE"))  # the verifier's probe mode (core/probe): given streams
    if probing or h.eval_only:  # scoring what a run ends with: every phase it declares switched on
        for _, name in run.phase_plan:
            switch_phase(run, name, True)
    if probing:
        probe_eval(run)
    elif h.eval_only:  # score a saved artifact with this program's evaluation, nothing trained
        roundtrip_eval(run, val_tokens, h.eval_only)
    else:
        prepare_training(run)
        compile_warmup(run)
        train(run, val_tokens)
        roundtrip_eval(run, val_tokens, export_artifact(run.base_model, h, run.ctx, train_ms=run.train_ms))
    teardown(run.ctx)


if __name__ == "__main__":
    try:
        main()
    except (RunInputError, FileNotFoundError) as exc:  # bad input: one line naming it, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
