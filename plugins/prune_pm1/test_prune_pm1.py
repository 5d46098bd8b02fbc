"""plugins/prune_pm1: the cheapest +-1 values go first, as few as fit, on both artifact formats; an emitted
export over the budget shrinks under it."""

from __future__ import annotations

import torch

from golfc.testing import load_program


def lowbit_obj():
    q = torch.tensor([[1, -1, 2, 0], [1, 1, -1, 3]], dtype=torch.int8)
    scale = torch.tensor([0.5, 0.1], dtype=torch.float16)  # row 1's +-1 are the cheapest (0.01 < 0.25)
    return {"__quant_format__": "golfc_lowbit_v1", "q": {"w": q}, "scale": {"w": scale}}


def nonzeros(obj):
    return int(sum((q != 0).sum() for q in (obj["q"] if "q" in obj else obj["quantized"]).values()))


def test_cheapest_first_and_as_few_as_fit():
    ns = load_program(("prune_pm1",))
    ns["ARTIFACT_BUDGET_BYTES"] = 4  # a size function that counts non-zero values: 4 left fits
    obj = lowbit_obj()
    out = ns["prune_pm1_fit"](obj, nonzeros, ns["Hyperparameters"]())
    assert out["q"]["w"].tolist() == [[1, -1, 2, 0], [0, 0, 0, 3]]  # all of row 1's, none of row 0's
    assert obj["q"]["w"].tolist() == [[1, -1, 2, 0], [1, 1, -1, 3]]  # the input is not modified
    ns["ARTIFACT_BUDGET_BYTES"] = 5
    out = ns["prune_pm1_fit"](obj, nonzeros, ns["Hyperparameters"]())
    assert nonzeros(out) == 5 and out["q"]["w"][0].tolist() == [1, -1, 2, 0]


def test_int8_format_and_scalar_scales():
    ns = load_program(("prune_pm1",))
    ns["ARTIFACT_BUDGET_BYTES"] = 3
    obj = {"quantized": {"v": torch.tensor([1, -1, 5], dtype=torch.int8),
                         "m": torch.tensor([[1, 4]], dtype=torch.int8)},
           "scales": {"v": torch.tensor(0.01), "m": torch.tensor([1.0], dtype=torch.float16)}}
    out = ns["prune_pm1_fit"](obj, nonzeros, ns["Hyperparameters"]())
    assert out["quantized"]["v"].tolist() == [0, 0, 5] and out["quantized"]["m"].tolist() == [[1, 4]]


def test_over_budget_export_is_pruned_under_it(tiny_trained, tmp_path, monkeypatch, capsys):
    from golfc.testing import cpu_context

    env, state = tiny_trained
    ns = load_program(("int5", "prune_pm1"), env=env)
    h = ns["Hyperparameters"]()
    model = ns["GPT"](h)
    model.load_state_dict(state)
    monkeypatch.setitem(ns, "program_source", lambda: "")
    ns["__file__"] = __file__
    monkeypatch.chdir(tmp_path)
    ns["export_artifact"](model, h, cpu_context(ns, vocab=h.vocab_size))
    size = (tmp_path / "final_model.int5.ptz").stat().st_size
    ns["ARTIFACT_BUDGET_BYTES"] = size + len(open(__file__, "rb").read()) - 20  # 20 bytes too many
    ns["export_artifact"](model, h, cpu_context(ns, vocab=h.vocab_size))
    out = capsys.readouterr().out
    assert "prune_pm1: zeroed" in out
    pruned = (tmp_path / "final_model.int5.ptz").stat().st_size
    assert pruned <= size - 20
    zeroed, total = (int(v) for v in out.split("prune_pm1: zeroed ")[1].split(" +-1")[0].split(" of "))
    assert 0 < zeroed < total  # not all of them: the search stops near the fewest that fit
