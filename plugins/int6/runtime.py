# ==================================================================================================
# plugins/int6: the low-bit export quantizer (int6, and with other defaults int5 and mixed_quant). Symmetric
# per-row quantization of every large float tensor with bits chosen per tensor class (embedding, attention,
# MLP, other): q = round(w / s) in [-qmax, qmax], qmax = 2^(bits-1) - 1 (int6: 31, int5: 15), s = clip / qmax
# stored in fp16, clip = the row's 99.99984th percentile of |w| unless a quant stage chooses it; values are
# kept in int8 containers (the compressor absorbs the unused high bits). Small tensors stay float (control
# tensors fp32, the rest fp16). QUANT_STAGES (fp16_keep, gptq_lite, sdclip, gptq, lqer) act at named points.
# ==================================================================================================
from golfc.runtime.model import is_control_tensor
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

INT6_LABEL = "int6"
LOWBIT_FORMAT = "golfc_lowbit_v1"  # written into every artifact; another format or version is refused
LOWBIT_QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs


def lowbit_class(name):
    """The tensor class that chooses the bits: embed (tok_emb, lm_head), attn, mlp or other."""
    if "tok_emb" in name or "lm_head" in name:
        return "embed"
    if ".attn." in name:
        return "attn"
    if ".mlp." in name:
        return "mlp"
    return "other"


def lowbit_bits(name, h):
    """QUANT_<CLASS>_BITS of the tensor's class."""
    return {"embed": h.quant_embed_bits, "attn": h.quant_attn_bits, "mlp": h.quant_mlp_bits,
            "other": h.quant_other_bits}[lowbit_class(name)]


def lowbit_qmax(bits):
    return (1 << (bits - 1)) - 1  # symmetric: int6 -> [-31, 31], int5 -> [-15, 15], int8 -> [-127, 127]


def lowbit_percentile_clip(w, q):
    """Per-row quantile q of |w| for w (rows, cols) fp32 -> (rows,), linear interpolation (torch.quantile in
    blocks of rows under its size limit)."""
    rows = max(1, LOWBIT_QUANTILE_MAX_NUMEL // max(w.size(1), 1))
    return torch.cat([torch.quantile(block.abs(), q, dim=1) for block in w.split(rows)])


def lowbit_scale(clip, qmax):
    """Row scales in fp16: clip / qmax, floored at 2^-24 (fp16's smallest step, so never 0): an all-zero row
    stays finite."""
    return (clip / qmax).clamp_min(2.0**-24).to(torch.float16)


def lowbit_round(w, scale, qmax):
    """Round to nearest with the stored (fp16) scales: int8 (rows, cols) in [-qmax, qmax]."""
    return torch.round(w / scale.float()[:, None]).clamp(-qmax, qmax).to(torch.int8)


def lowbit_stage_methods(method):
    return [getattr(stage, method) for stage in QUANT_STAGES if getattr(stage, method, None) is not None]


def lowbit_hessian(name):
    """H (cols, cols) of a matrix's inputs from the first stage that collected Hessians (gptq), or None."""
    return next((H for H in (fn(name) for fn in lowbit_stage_methods("hessian")) if H is not None), None)


def lowbit_quantize_matrix(name, w, bits, h):
    """w (rows, cols) fp32 -> (q int8 (rows, cols), scale fp16 (rows,)): the first stage that gives a clip
    (sdclip, gptq_lite) or a rounding (gptq) decides it, else the percentile clip and round to nearest."""
    qmax = lowbit_qmax(bits)
    clip = next((c for c in (fn(name, w, qmax, h) for fn in lowbit_stage_methods("clip")) if c is not None), None)
    if clip is None:
        clip = lowbit_percentile_clip(w, h.quant_clip_percentile / 100.0)
    scale = lowbit_scale(clip, qmax)
    q = next((r for r in (fn(name, w, scale, qmax, h) for fn in lowbit_stage_methods("round")) if r is not None), None)
    return (q if q is not None else lowbit_round(w, scale, qmax)), scale


def lowbit_as_matrix(t):
    """A tensor as the matrix its rows are quantized in: (dim0, rest) for 2-D and more, (1, n) for a vector."""
    return t.float().reshape(t.shape[0], -1) if t.ndim >= 2 else t.float().reshape(1, -1)


def lowbit_plan(name, t, h):
    """Bits for one float tensor (16: kept in fp16, 32: control tensor kept exact)."""
    if is_control_tensor(name):  # a control tag, else the name patterns
        return 32
    bits = lowbit_bits(name, h) if t.numel() > h.quant_keep_float_numel else 16
    for fn in lowbit_stage_methods("plan"):
        bits = fn(name, t, bits, h)
    return bits


def lowbit_payload_bytes(obj):
    """Bytes of every tensor the artifact stores."""
    def size(x):
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        return sum(size(v) for v in x.values()) if isinstance(x, dict) else 0
    return sum(size(obj[k]) for k in ("q", "scale", "keep", "lowrank"))


def quantize_model_lowbit(model, state, h, ctx, calibration):
    """The quantizer slot: (object to torch.save, stats). Stages prepare first (GPTQ reads its calibration
    batches there), then every tensor is planned and stored, then stages finish (LQER)."""
    for fn in lowbit_stage_methods("prepare"):
        fn(model, state, h, ctx, calibration)
    obj = {"__quant_format__": LOWBIT_FORMAT, "q": {}, "scale": {}, "bits": {}, "shapes": {}, "dtypes": {},
           "keep": {}, "keep_dtypes": {}, "lowrank": {}}
    stats = {"param_count": 0, "payload_bytes": 0, "baseline_tensor_bytes": 0, "num_quantized": 0}
    for name, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        stats["param_count"] += t.numel()
        stats["baseline_tensor_bytes"] += t.numel() * t.element_size()
        if not t.is_floating_point():
            obj["keep"][name] = t
            continue
        bits = lowbit_plan(name, t, h)
        dtype = str(t.dtype).removeprefix("torch.")
        if bits >= 16:
            obj["keep"][name] = t.float() if bits == 32 else t.to(torch.float16)
            obj["keep_dtypes"][name] = dtype
            continue
        obj["q"][name], obj["scale"][name] = lowbit_quantize_matrix(name, lowbit_as_matrix(t), bits, h)
        obj["bits"][name], obj["shapes"][name], obj["dtypes"][name] = bits, tuple(t.shape), dtype
        stats["num_quantized"] += 1
    for fn in lowbit_stage_methods("finish"):
        fn(obj, state, h)
    stats["payload_bytes"] = lowbit_payload_bytes(obj)
    return obj, stats


def lowbit_lowrank_dense(entry):
    """A low-rank correction (LQER) as a dense (rows, cols) fp32 matrix: (A_q a_s) @ (B_q b_s), where B is stored
    flattened in groups of len(B) / len(b_scale), one fp16 scale each."""
    a = entry["a"].float() * entry["a_scale"].float()
    r, cols = entry["b_shape"]
    b = entry["b"].float().view(entry["b_scale"].numel(), -1) * entry["b_scale"].float()[:, None]
    return a @ b.reshape(-1)[: r * cols].view(r, cols)


def lowbit_dequantize_matrix(obj, name):
    """One stored matrix back as fp32 (rows, cols), its low-rank correction added."""
    w = obj["q"][name].float() * obj["scale"][name].float()[:, None]
    if name in obj["lowrank"]:
        w = w + lowbit_lowrank_dense(obj["lowrank"][name])
    return w


def dequantize_state_dict_lowbit(obj):
    """Inverse of quantize_model_lowbit: every tensor back in its shape and dtype (CPU). An artifact of another
    format or version is one line (exit 2)."""
    found = obj.get("__quant_format__") if isinstance(obj, dict) else type(obj).__name__
    if found != LOWBIT_FORMAT:
        raise RunInputError(f"artifact format {found!r}: this program reads {LOWBIT_FORMAT!r} artifacts")
    out = {}
    for name in obj["q"]:
        w = lowbit_dequantize_matrix(obj, name)
        out[name] = w.reshape(obj["shapes"][name]).to(getattr(torch, obj["dtypes"][name])).contiguous()
    for name, t in obj["keep"].items():
        dtype = obj["keep_dtypes"].get(name)
        out[name] = t.to(getattr(torch, dtype)).contiguous() if dtype else t
    return out
