"""plugins/gptq_lite: each row keeps the candidate clip with the least squared error."""

from __future__ import annotations

import torch

from golfc.testing import load_program


def test_each_row_gets_its_best_candidate():
    ns = load_program(("int6", "gptq_lite"))
    h = ns["Hyperparameters"]()
    torch.manual_seed(0)
    w = torch.randn(64, 300)
    w[::3, 0] = 40.0  # an outlier per third row: there the lower clips pay off
    clip = ns["GPTQ_LITE_STAGE"].clip("stack.blocks.0.mlp.fc.weight", w, 31, h)

    def err(c):
        s = ns["lowbit_scale"](c, 31)
        return (ns["lowbit_round"](w, s, 31).float() * s.float()[:, None] - w).square().sum(1)

    candidates = [ns["lowbit_percentile_clip"](w, p / 100) for p in (99.9, 99.95, 99.99, 99.999, 100.0)]
    errors = torch.stack([err(c) for c in candidates])
    torch.testing.assert_close(err(clip), errors.min(dim=0).values)
    assert (err(clip) <= err(candidates[-1])).all() and (err(clip) < err(candidates[-1]))[::3].all()
