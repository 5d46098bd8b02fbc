# ==================================================================================================
# plugins/int8_quant: export quantizer. Per-row int8 for large float matrices (clip each row at the
# 99.99984th percentile of |w|, fp16 scale = clip/127), per-tensor int8 for other large float tensors,
# small float tensors kept (control tensors fp32, the rest fp16), non-float tensors passed through.
# ==================================================================================================
from golfc.runtime.model import is_control_tensor, param_tag
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

INT8_LABEL = "int8"
INT8_KEEP_FLOAT_MAX_NUMEL = 65_536  # tensors this small stay in float
INT8_CLIP_Q = 99.99984 / 100.0
INT8_QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs
INT8_REFERENCE_MIN_SCALE = 1.0 / 127.0


INT8_FORMAT = "int8_per_row_v1"  # written into every artifact; another format is refused when read back


def int8_abs_quantile(x):
    """Per-row INT8_CLIP_Q quantile of |x| for x (rows, cols) fp32 -> (rows,), linear interpolation."""
    x = x.abs()
    if x.size(1) <= INT8_QUANTILE_MAX_NUMEL:  # torch.quantile on blocks of rows under its size limit
        rows = max(1, INT8_QUANTILE_MAX_NUMEL // x.size(1))
        return torch.cat([torch.quantile(block, INT8_CLIP_Q, dim=1) for block in x.split(rows)])
    rank = INT8_CLIP_Q * (x.size(1) - 1)  # same interpolation, by order statistics
    lo = int(math.floor(rank))
    hi = min(lo + 1, x.size(1) - 1)
    v_lo, v_hi = torch.kthvalue(x, lo + 1, dim=1).values, torch.kthvalue(x, hi + 1, dim=1).values
    return torch.lerp(v_lo, v_hi, rank - lo)


def int8_quantize_tensor(t, min_scale=INT8_REFERENCE_MIN_SCALE):
    """float tensor -> (int8 values in [-127, 127], scale): per row (fp16 scales) for matrices, else one fp32 scale.

    Row scales are floored at min_scale. The reference floors them at 1/127: a row whose clip is below 1.0
    is stored with step 1/127, coarser than its range allows, which compresses well (few distinct values)
    and costs accuracy while weights are small (INT8_MIN_SCALE=0: every row uses its own clip/127).
    """
    t32 = t.float()
    if t32.ndim == 2:
        clip = int8_abs_quantile(t32)  # (rows,)
        scale = (clip / 127.0).clamp_min(max(min_scale, 1e-8))  # 1e-8: an all-zero row stays finite
        q = torch.round(torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None]) / scale[:, None])
        return q.clamp(-127, 127).to(torch.int8).contiguous(), scale.to(torch.float16).contiguous()
    clip = float(int8_abs_quantile(t32.reshape(1, -1))[0])
    scale = torch.tensor(clip / 127.0 if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.round(t32.clamp(-clip, clip) / scale)
    return q.clamp(-127, 127).to(torch.int8).contiguous(), scale


def quantize_state_dict_int8(state_dict, h=None):
    """state dict -> (object to torch.save, stats with param_count, payload_bytes, baseline_tensor_bytes)."""
    min_scale = h.int8_min_scale if h is not None else INT8_REFERENCE_MIN_SCALE
    quantized, scales, dtypes, passthrough, passthrough_dtypes = {}, {}, {}, {}, {}
    stats = {"param_count": 0, "payload_bytes": 0, "baseline_tensor_bytes": 0, "num_quantized": 0}
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        stats["param_count"] += t.numel()
        stats["baseline_tensor_bytes"] += t.numel() * t.element_size()
        quant = param_tag(name, "quant")  # a plugin's tag_param(p, quant=...) wins over the size rule
        if not t.is_floating_point():
            passthrough[name] = t
        elif quant in ("fp32", "fp16") or (quant is None and t.numel() <= INT8_KEEP_FLOAT_MAX_NUMEL):
            if quant == "fp32" or (quant is None and is_control_tensor(name)):
                passthrough[name] = t.float()  # control tensors: exact fp32
            else:
                passthrough[name] = t.to(torch.float16)
            passthrough_dtypes[name] = str(t.dtype).removeprefix("torch.")
        else:
            quantized[name], scales[name] = int8_quantize_tensor(t, min_scale)
            dtypes[name] = str(t.dtype).removeprefix("torch.")
            stats["num_quantized"] += 1
            stats["payload_bytes"] += quantized[name].numel() + scales[name].numel() * scales[name].element_size()
            continue
        stats["payload_bytes"] += passthrough[name].numel() * passthrough[name].element_size()
    obj = {
        "__quant_format__": INT8_FORMAT,
        "quantized": quantized,
        "scales": scales,
        "dtypes": dtypes,
        "passthrough": passthrough,
        "passthrough_dtypes": passthrough_dtypes,
    }
    return obj, stats


def quantize_model_int8(model, state, h, ctx, calibration):
    """The quantizer slot's contract: the state dict alone decides the int8 artifact (no calibration read)."""
    return quantize_state_dict_int8(state, h)


def dequantize_state_dict_int8(obj):
    """Inverse of quantize_state_dict_int8: every tensor back in its original dtype (CPU). An artifact of
    another format (or none) is one line and exit code 2, not a KeyError or silently wrong weights."""
    found = obj.get("__quant_format__") if isinstance(obj, dict) else type(obj).__name__
    if found != INT8_FORMAT:
        raise RunInputError(f"artifact format {found!r}: this program reads {INT8_FORMAT!r} artifacts")
    out = {}
    for name, q in obj["quantized"].items():
        s = obj["scales"][name].float()
        if s.ndim > 0:
            s = s.view(q.size(0), *([1] * (q.ndim - 1)))  # per row
        out[name] = (q.float() * s).to(getattr(torch, obj["dtypes"][name])).contiguous()
    for name, t in obj["passthrough"].items():
        dtype = obj["passthrough_dtypes"].get(name)
        out[name] = t.to(getattr(torch, dtype)).contiguous() if dtype else t
    return out
