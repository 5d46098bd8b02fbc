"""plugins/unet_blocks: initial values and the U-Net wiring (encoder pushes, decoder pops in reverse), as the
core's BlockStack runs its block, layer schedule and skip mixer."""

from __future__ import annotations

import torch

from golfc.testing import load_program


def test_init_and_skip_wiring():
    ns = load_program(
        overrides={"NUM_LAYERS": "5", "MODEL_DIM": "16", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "DEVICE": "cpu"}
    )
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    stack = ns["BlockStack"](h)
    assert type(stack.blocks[0]).__name__ == "UNetBlock" and type(stack.mixer).__name__ == "UNetSkips"
    assert len(stack.blocks) == 5 and stack.mixer.num_skip == 2 and stack.skip_weights.shape == (2, 16)
    assert next(n for n, _ in stack.named_parameters()) == "skip_weights"  # the stack's own, as before the split
    block = stack.blocks[0]
    assert torch.equal(block.resid_mix, torch.stack((torch.ones(16), torch.zeros(16))))
    assert torch.all(block.attn_scale == 1) and torch.all(block.mlp_scale == 1) and torch.all(stack.skip_weights == 1)
    assert [b.attn.layer for b in stack.blocks] == [0, 1, 2, 3, 4]
    for p in stack.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x0 = torch.randn(2, 6, 16)
    x = x0 + 0.1 * torch.randn(2, 6, 16)

    def run(block, x):  # Block(x, x0) by hand
        mix = block.resid_mix
        x = mix[0] * x + mix[1] * x0
        x = x + block.attn_scale * block.attn(torch.nn.functional.rms_norm(x, (16,)))
        return x + block.mlp_scale * block.mlp(torch.nn.functional.rms_norm(x, (16,)))

    e0 = run(stack.blocks[0], x)
    e1 = run(stack.blocks[1], e0)
    d0 = run(stack.blocks[2], e1 + stack.skip_weights[0] * e1)
    d1 = run(stack.blocks[3], d0 + stack.skip_weights[1] * e0)
    d2 = run(stack.blocks[4], d1)  # no skips left
    fctx = ns["ForwardContext"](None, x0, (), [])
    torch.testing.assert_close(stack(x, x0, fctx), d2, atol=1e-5, rtol=1e-5)
    assert ns["unet_layer_schedule"](h, ()) == (0, 1, 2, 3, 4)
