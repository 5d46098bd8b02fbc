"""plugins/lqer: packing formula, the worst matrices corrected, error reduced, the correction read back."""

from __future__ import annotations

import io

import torch

from golfc.testing import load_program


def test_pack_formula():
    ns = load_program(("int6", "lqer"))
    torch.manual_seed(0)
    E = torch.randn(40, 100) * 0.01 + torch.randn(40, 1) @ torch.randn(1, 100)
    entry = ns["lqer_pack"](E, 4, 64)
    U, S, _ = torch.linalg.svd(E, full_matrices=False)
    A = U[:, :4] * S[:4]
    assert entry["a"].shape == (40, 4) and entry["b_shape"] == (4, 100)
    assert int(entry["a"].min()) >= -2 and int(entry["a"].max()) <= 1
    assert int(entry["b"].min()) >= -8 and int(entry["b"].max()) <= 7
    assert entry["b"].numel() == 448 and entry["b_scale"].numel() == 7  # 400 values padded to 7 groups of 64
    torch.testing.assert_close(entry["a_scale"].float(), (A.abs().max() / 1.5).half().float())
    dense = ns["lowbit_lowrank_dense"](entry)
    assert (E - dense).norm() < 0.7 * E.norm()  # the rank-1 structure is captured through int2 / int4


def test_top_k_worst_matrices_are_corrected_and_read_back(tiny_trained):
    env, state = tiny_trained
    ns = load_program(("int5", "lqer"), env={**env, "LQER_TOP_K": "2", "LQER_RANK": "4"})
    h = ns["Hyperparameters"]()
    plain = load_program(("int5",), env=env)
    base, _ = plain["quantize_model"](None, state, plain["Hyperparameters"](), None, None)
    obj, _ = ns["quantize_model"](None, state, h, None, None)

    def error(o, name):
        return float((state[name].float() - ns["lowbit_dequantize_matrix"](o, name)).norm())

    worst = sorted(base["q"], key=lambda n: error(base, n), reverse=True)[:2]
    assert sorted(obj["lowrank"]) == sorted(worst)
    for name in worst:
        assert error(obj, name) < error(base, name)
    buf = io.BytesIO()
    torch.save(obj, buf)
    out = ns["dequantize_state_dict"](torch.load(io.BytesIO(buf.getvalue())))
    name = worst[0]
    expected = ns["lowbit_dequantize_matrix"](base, name) + ns["lowbit_lowrank_dense"](obj["lowrank"][name])
    torch.testing.assert_close(out[name].float(), expected.reshape(out[name].shape))
