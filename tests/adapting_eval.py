"""A check for plugins that change the forward: the adapting evaluation (ttt) runs the same forward as the plain
evaluation, plugin included (a gate left out of a record's TTT forward cost it 0.8 bpb).

``check_adapting_eval_uses_plugin(plugins, prepare)`` builds ``plugins + ("ttt",)`` and the same program without
``plugins``, loads the same weights into both and checks that
1. the final (adapting) evaluation's scores of the first chunk, taken before any update, equal the plain
   evaluation's to the bit;
2. they differ from the program without the plugins (the plugin is in that forward, not bypassed);
3. a TTT training step moves the plugin's own parameters (``plugin_params``: names in the state dict), i.e. the
   adapting forward's backward reaches them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from golfc.testing import cpu_context, load_program, mixing_model

TTT_TINY = {"NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "TRAIN_SEQ_LEN": "16",
            "VOCAB_SIZE": "64", "TTT_CHUNK_TOKENS": "32", "TTT_EPOCHS": "2", "TTT_LR": "0.05",
            "TTT_BATCH_SEQS": "2", "DEVICE": "cpu"}


def _stream(n=160, seed=3, bos_every=23):
    tokens = torch.randint(2, 64, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)
    tokens[::bos_every] = 1  # documents: BOS=1 every bos_every tokens
    return tokens


def _by_position(scores):
    """nll indexed by target position - 1 (every target scored once)."""
    nll = torch.empty_like(scores.nll)
    nll[scores.positions - 1] = scores.nll
    return nll


def check_adapting_eval_uses_plugin(
    plugins: tuple[str, ...],
    env: dict[str, str] | None = None,
    prepare: Callable[[torch.nn.Module], None] | None = None,
    plugin_params: tuple[str, ...] = (),
) -> None:
    env = {**TTT_TINY, **(env or {})}
    ns = load_program((*plugins, "ttt"), env=env)
    base = load_program(("ttt",), env=env)
    model = mixing_model(ns)
    if prepare is not None:  # make the plugin act (e.g. give a zero-initialised gate non-zero weights)
        with torch.no_grad():
            prepare(model)
    h = ns["Hyperparameters"]()
    val = _stream()
    adapted = ns["score_then_train"](model, val, h, cpu_context(ns), True)
    plain = ns["score_then_train"](model, val, h, cpu_context(ns), False)
    first_chunk = adapted.positions <= h.ttt_chunk_tokens  # scored before any update
    assert first_chunk.sum() >= 16
    assert torch.equal(adapted.nll[first_chunk], _by_position(plain)[adapted.positions[first_chunk] - 1])

    without = base["GPT"](base["Hyperparameters"]())
    own = without.state_dict()
    without.load_state_dict({k: v for k, v in model.state_dict().items() if k in own}, strict=True)
    other = base["score_then_train"](without, val, h, cpu_context(base), True)
    assert not torch.equal(adapted.nll[first_chunk], _by_position(other)[adapted.positions[first_chunk] - 1])

    if plugin_params:
        params = [p for p in model.parameters() if p.requires_grad]
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        optimizer = torch.optim.SGD(params, lr=h.ttt_lr)
        for p in params:
            p.grad = torch.zeros_like(p)
        sequences = ns["ttt_sequences"](val, 0, h.ttt_chunk_tokens, h.train_seq_len)
        ns["ttt_train_chunk"](model, params, optimizer, sequences, cpu_context(ns), h.ttt_epochs, h.ttt_batch_seqs,
                              h.ttt_grad_clip)
        after = model.state_dict()
        for name in plugin_params:
            assert not torch.equal(before[name], after[name]), f"TTT did not train {name}"
