# ==================================================================================================
# core/model: the GPT skeleton. Slots filled by plugins: PositionEncoding, attention_kernel, QKV_PRE_ROPE,
# VALUE_HOOKS, QK_TRANSFORMS, ATTENTION_POST (in CausalSelfAttention), Block, MLP, layer_schedule, SkipMixer (in
# BlockStack), EMBEDDING_PRE_NORM, EMBEDDING_EXTRAS, loss_from_hidden (in GPT). Every hook inside a forward gets
# its ForwardContext.
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

# Small "control" tensors: kept in fp32 during training and in the artifact, optimised by Adam. A plugin adds
# the names of its own with CONTROL_TENSOR_NAME_PATTERNS.extend(...) at the top of its section.
CONTROL_TENSOR_NAME_PATTERNS = ["attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight"]


PARAM_TAGS = {}  # state-dict name -> tags of the GPT built last (for code that sees a state dict, not the model)


def tag_param(p, control=None, group=None, quant=None):
    """Tag a parameter, for the core and the default plugins to read in preference to its name: control=True
    keeps it in fp32 in training and in the artifact (a control tensor; False: not one, whatever its name);
    group="adam" or "muon" picks its optimizer; quant="int8", "fp16" or "fp32" its export format. Returns p."""
    given = {"control": control, "group": group, "quant": quant}
    p.golfc_tags = {**getattr(p, "golfc_tags", {}), **{k: v for k, v in given.items() if v is not None}}
    return p


def param_tag(name, key, p=None):
    """A parameter's tag `key` (from p itself, else from PARAM_TAGS by state-dict name), None when untagged."""
    return (getattr(p, "golfc_tags", {}) if p is not None else PARAM_TAGS.get(name, {})).get(key)


def is_control_tensor(name, p=None):
    """The control tag when a plugin set one, else the baseline's rule: the name contains a control pattern."""
    tagged = param_tag(name, "control", p)
    return tagged if tagged is not None else any(s in name for s in CONTROL_TENSOR_NAME_PATTERNS)


def rms_norm(x):
    """RMSNorm over the last dim, no learned weight."""
    return F.rms_norm(x, (x.size(-1),))


class CastedLinear(nn.Linear):
    """Linear layer without bias whose fp32 weight is cast to the activation dtype at matmul time.

    Every matrix the optimizer treats as a matrix (Muon) and the quantizer quantizes is one of these.
    """

    def __init__(self, in_features, out_features, zero_init=False):
        super().__init__(in_features, out_features, bias=False)  # default (Kaiming-uniform) init
        if zero_init:
            nn.init.zeros_(self.weight)
        # the weight-transform point (slot weight_transform, e.g. QAT's fake quantization); None: the weight as is
        self.weight_transform = LinearWeightTransform(self) if LinearWeightTransform is not None else None

    def forward(self, x):
        w = self.weight if self.weight_transform is None else self.weight_transform(self.weight)
        return F.linear(x, w.to(x.dtype))


class CausalSelfAttention(nn.Module):
    """GQA attention: QK-norm, RoPE, per-head query gain, then the attention_kernel slot."""

    def __init__(self, h, layer):
        super().__init__()
        d, H, Hkv = h.model_dim, h.num_heads, h.num_kv_heads
        if d % H != 0 or H % Hkv != 0 or (d // H) % 2 != 0:
            raise RunInputError(f"MODEL_DIM={d}, NUM_HEADS={H}, NUM_KV_HEADS={Hkv}: need d % H == 0, H % Hkv == 0, even head_dim")
        self.h, self.layer = h, layer
        self.num_heads, self.num_kv_heads, self.head_dim = H, Hkv, d // H
        kv_dim = Hkv * self.head_dim
        self.c_q = CastedLinear(d, d)
        self.c_k = CastedLinear(d, kv_dim)
        self.c_v = CastedLinear(d, kv_dim)
        self.proj = CastedLinear(d, d, zero_init=True)  # each block starts as the identity
        self.q_gain = nn.Parameter(torch.full((H,), h.qk_gain_init, dtype=torch.float32))
        self.rotary = PositionEncoding(self.head_dim, h, layer)  # position_encoding slot (default: rope)
        self.post = nn.ModuleList([cls(h, layer) for cls in ATTENTION_POST])  # attention_post slot (output gates)

    def forward(self, x, fctx=None):  # x (B, T, d); fctx: the forward's ForwardContext (None: no hooks need it)
        B, T, d = x.shape
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        # Heads stay in the matmuls' (B, T, H, D) memory order and the kernel gets (B, H, T, D) views: SDPA returns
        # y in q's memory order, so merging the heads needs no transpose copy (bench/RESULTS.md, "memory order").
        q = rms_norm(self.c_q(x).view(B, T, H, D))  # (B, T, H, D)
        k = rms_norm(self.c_k(x).view(B, T, Hkv, D))  # (B, T, Hkv, D)
        v = self.c_v(x).view(B, T, Hkv, D)  # (B, T, Hkv, D)
        for fn in QKV_PRE_ROPE:
            q, k, v = fn(q, k, v, self.layer, self.h, fctx)
        q, k = self.rotary(q), self.rotary(k)
        for hook in (fctx.value_hooks if fctx is not None else ()):
            v = hook(v, self.layer, fctx)  # value-side modules of the GPT (value embeddings)
        q = (q * self.q_gain.to(q.dtype)[None, None, :, None]).transpose(1, 2)  # (B, H, T, D) view
        k = k.transpose(1, 2)  # (B, Hkv, T, D) view
        for fn in QK_TRANSFORMS:
            q, k = fn(q, k, self.layer, self.h)
        y = attention_kernel(q, k, v.transpose(1, 2), self.h, self.layer, fctx).transpose(1, 2)  # (B, T, H, D)
        for post in self.post:
            y = post(y, v, x, fctx)  # y (B, T, H, D), v (B, T, Hkv, D), x (B, T, d) this attention's input
        return self.proj(y.reshape(B, T, d))


class ForwardContext:
    """What one forward pass shares with the hooks inside it: made once per GPT.hidden call, handed to the
    block stack, every block and attention (value hooks, q/k/v transforms before RoPE). No tensor op: the
    baseline's graph is unchanged, and torch.compile traces it as plain Python state."""

    def __init__(self, ids, x0, phases, value_hooks):
        self.ids = ids  # (B, T) int64: the input tokens (value embeddings, document masks)
        self.x0 = x0  # (B, T, d): the normed embedding the blocks mix back in
        self.phases = phases  # names of the run phases switched on (run_events), e.g. ("recurrence",)
        self.value_hooks = value_hooks  # GPT.value_hooks: the value_hook slot's modules
        self.layer = None  # index of the block running now (stack.blocks[layer])
        self.depth = None  # position of that block in the layer schedule (differs from layer under recurrence)
        self.schedule = None  # the layer schedule this forward runs (a tuple of layer indices, set by BlockStack)
        self.cache = {}  # this forward's own cache: a mask built at the first layer and read by the rest


class BlockStack(nn.Module):
    """The blocks (block slot: Block(h, layer), state-dict names stack.blocks.N), run in the layer schedule's
    order (layer_schedule slot), with the skip mixer (skip_mixer slot) around each; the mixer registers its
    parameters here (stack.skip_weights)."""

    def __init__(self, h):
        super().__init__()
        self.h = h
        self.blocks = nn.ModuleList([Block(h, i) for i in range(h.num_layers)])
        self.mixer = SkipMixer(h, self)

    def forward(self, x, x0, fctx):  # (B, T, d) each
        fctx.schedule = layer_schedule(self.h, fctx.phases)
        for depth, layer in enumerate(fctx.schedule):
            fctx.layer, fctx.depth = layer, depth
            x = self.mixer.before(self, x, depth, fctx)
            x = self.blocks[layer](x, x0, fctx)
            x = self.mixer.after(self, x, depth, fctx)
        return x


class GPT(nn.Module):
    """Token embedding (+ pre-norm extras) -> RMSNorm -> embedding extras -> BlockStack -> RMSNorm -> (tied)
    head -> softcap -> CE."""

    def __init__(self, h):
        super().__init__()
        self.logit_softcap = h.logit_softcap
        self.phases = ()  # the run phases switched on, sorted (set by switch_phase, read by every forward)
        self.tok_emb = nn.Embedding(h.vocab_size, h.model_dim)
        self.pre_norm = nn.ModuleList([cls(h) for cls in EMBEDDING_PRE_NORM])
        self.extras = nn.ModuleList([cls(h) for cls in EMBEDDING_EXTRAS])
        self.stack = BlockStack(h)
        self.value_hooks = nn.ModuleList([cls(h) for cls in VALUE_HOOKS])
        self.lm_head = None if h.tie_embeddings else CastedLinear(h.model_dim, h.vocab_size, zero_init=True)
        if h.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=h.tied_embed_init_std)
        PARAM_TAGS.clear()
        PARAM_TAGS.update((n, p.golfc_tags) for n, p in self.named_parameters() if hasattr(p, "golfc_tags"))

    def hidden(self, ids):
        """ids (B, T) int64 -> the last hidden state (B, T, d), before the final norm."""
        x = self.tok_emb(ids)  # (B, T, d)
        for extra in self.pre_norm:
            x = extra(ids, x)
        x = rms_norm(x)
        for extra in self.extras:
            x = extra(ids, x)
        fctx = ForwardContext(ids, x, self.phases, self.value_hooks)
        return self.stack(x, x, fctx)  # x0 = x: the blocks mix the embedding back in

    def head(self, hidden):
        """hidden (B, T, d) -> logits before the softcap (B, T, V): final norm, (tied) head."""
        x = rms_norm(hidden)
        return F.linear(x, self.tok_emb.weight) if self.lm_head is None else self.lm_head(x)

    def logits(self, hidden):
        """hidden (B, T, d) -> softcapped logits (B, T, V): c * tanh(head(hidden) / c)."""
        return self.logit_softcap * torch.tanh(self.head(hidden) / self.logit_softcap)

    def forward(self, ids, targets, reduction="mean"):
        """ids, targets (B, T) int64 -> mean loss, or per-token NLL (B, T) fp32 with reduction="none"."""
        if loss_from_hidden is not None:  # loss slot (a fused softcapped cross-entropy): the same loss
            return loss_from_hidden(self, self.hidden(ids), targets, reduction)
        logits = self.logits(self.hidden(ids))
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)
        return loss.view_as(targets) if reduction == "none" else loss


def cast_params_for_training(model, device):
    """On CUDA, as the reference does: round every parameter to bf16 (it casts the whole model to bf16), then
    store CastedLinear weights and vectors / control tensors in fp32 again (their values stay bf16 numbers
    until the first step) and everything else in bf16 (at the baseline's shapes, the token embedding).
    On CPU everything stays fp32, unrounded.
    """
    if device.type != "cuda":
        return
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, CastedLinear)}
    for name, p in model.named_parameters():
        keep_fp32 = id(p) in linear_weights or p.ndim < 2 or is_control_tensor(name, p)
        p.data = p.data.to(torch.bfloat16).to(torch.float32 if keep_fp32 else torch.bfloat16)
