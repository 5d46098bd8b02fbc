# ==================================================================================================
# plugins/qat: quantization-aware training with a straight-through estimator, at CastedLinear's weight-transform
# point. In training, w -> w + on * (Q(w) - w).detach(): the forward sees Q(w) = clamp(round(w / s), -qmax, qmax) s
# with s = fp16(max|w_row| / qmax) (the export's 99.99984th-percentile clip is the row max up to a fraction of
# the gap between its two largest values at these row lengths), the backward the identity. qmax comes from the
# low-bit quantizer's bits for the layer's class; tensors it keeps in float are not fake-quantized.
# `on` and `qmax` are tensors (buffers), not Python attributes: a compiled forward reads their current values,
# where a Python flag is a constant of the traced graph (one record's late QAT never ran for that reason).
# ==================================================================================================
from golfc.runtime.model import CastedLinear
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

QAT_STATE = {"configured": False, "on": False}


class QatWeightTransform(nn.Module):
    """The weight-transform module of one CastedLinear; identity until qat_train_hook switches it on."""

    def __init__(self, linear):
        super().__init__()
        self.register_buffer("qat_on", torch.zeros(()), persistent=False)
        self.register_buffer("qat_qmax", torch.full((), 31.0), persistent=False)

    def forward(self, w):  # w (out, in) fp32
        if not self.training:
            return w
        wd = w.detach()
        scale = (wd.abs().amax(dim=1, keepdim=True) / self.qat_qmax).clamp_min(2.0**-24).half().float()
        wq = torch.clamp(torch.round(wd / scale), -self.qat_qmax, self.qat_qmax) * scale
        return w + self.qat_on * (wq - wd)


def qat_configure(model, h):
    """Each layer's qmax from the low-bit quantizer's bits; layers it keeps in float stay unquantized (None)."""
    qmax = {}
    for name, module in model.named_modules():
        if isinstance(module, CastedLinear) and isinstance(module.weight_transform, QatWeightTransform):
            key = f"{name}.weight"
            bits = lowbit_plan(key, module.weight, h)
            qmax[name] = lowbit_qmax(bits) if bits < 16 else None
            module.weight_transform.qat_qmax.fill_(float(qmax[name] or 1.0))
    return qmax


def qat_switch(model, on):
    """Turn fake quantization on or off in every eligible layer (a tensor write, seen by compiled graphs)."""
    for name, module in model.named_modules():
        if isinstance(module, CastedLinear) and isinstance(module.weight_transform, QatWeightTransform):
            eligible = QAT_STATE["qmax"].get(name) is not None
            module.weight_transform.qat_on.fill_(1.0 if on and eligible else 0.0)


def qat_train_hook(model, step, lr_mul, h):
    """train_quantization slot: configure once, then switch on at the first step with lr_mul < LATE_QAT_THRESHOLD
    (LATE_QAT_THRESHOLD=0: from the first step). Once on, it stays on."""
    if not QAT_STATE["configured"]:
        QAT_STATE["qmax"], QAT_STATE["configured"] = qat_configure(model, h), True
    want = h.late_qat_threshold <= 0 or lr_mul < h.late_qat_threshold
    if want and not QAT_STATE["on"]:
        QAT_STATE["on"] = True
        qat_switch(model, True)
        log0(f"qat: on at step {step} (lr_mul {lr_mul:.4f}, LATE_QAT_THRESHOLD={h.late_qat_threshold:g})")
