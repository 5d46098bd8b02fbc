"""Run the training phases of a loaded program in this process, recording the weights after every optimizer step:
what a weight-averaging plugin's tests compare the exported final_model.pt against."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from golfc.testing import TINY_RUN_ENV, load_program


def train_and_export(plugins: tuple[str, ...], dataset: Any, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Set up, build, warm up, train (the program's own train()), export; returns the initial weights, the
    weights after each step with the lr_mul it used, and final_model.pt as written by export_artifact."""
    run_env = {**dataset.env(), **TINY_RUN_ENV, **env}
    ns = load_program(plugins, env=run_env)
    recorded: list[tuple[int, float, dict[str, torch.Tensor]]] = []
    averager_cls = ns["WeightAverager"]

    class Recording(averager_cls):  # the plugin's class, plus a copy of the weights it is handed each step
        def update(self, model, step, lr_mul):
            recorded.append((step, lr_mul, {k: v.detach().clone() for k, v in model.state_dict().items()}))
            super().update(model, step, lr_mul)

    ns["WeightAverager"] = Recording
    (workdir / "train_gpt.py").write_text("# stands in for the program file (its size is logged)\n")
    ns["__file__"], ns["__golfc_source__"] = str(workdir / "train_gpt.py"), "# in-process run\n"
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        h = ns["Hyperparameters"]()
        ctx = ns["setup"](h)
        val_tokens = ns["load_validation"](h, ctx)
        run = ns["build_model"](h, ctx)
        ns["prepare_training"](run)
        ns["compile_warmup"](run)
        initial = {k: v.detach().clone() for k, v in run.base_model.state_dict().items()}
        ns["train"](run, val_tokens)
        ns["export_artifact"](run.base_model, h, ctx)
        exported = torch.load(workdir / "final_model.pt", map_location="cpu")
        last = {k: v.detach().clone() for k, v in run.base_model.state_dict().items()}
    finally:
        os.chdir(cwd)
    return {"initial": initial, "steps": recorded, "exported": exported, "model_after": last, "h": h}
