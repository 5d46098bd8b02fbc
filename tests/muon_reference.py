"""Direct per-matrix computations of Muon and its transforms (numpy float64 unless said), for the optimizer
plugins' tests: each test drives the real Muon of a loaded program and compares one step with these."""

from __future__ import annotations

import numpy as np
import torch

from golfc.testing import load_program

ENV = {"VOCAB_SIZE": "64", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "DEVICE": "cpu"}
SHAPES = [(8, 16), (16, 8), (8, 8), (8, 16), (12, 8), (16, 8)]  # mixed orientations inside one shape group
NS5 = [(3.4445, -4.7750, 2.0315)] * 5


def program(plugins, **env):
    return load_program(tuple(plugins), env={**ENV, **{k: str(v) for k, v in env.items()}})


def muon(ns, params, lr=0.1, momentum=0.9, steps=5, rank=0, world=1):
    ctx = ns["RunContext"](rank, world, rank, torch.device("cpu"), rank == 0, False, 8 // world)
    return ns["Muon"](params, lr=lr, momentum=momentum, backend_steps=steps, ctx=ctx, h=ns["Hyperparameters"]())


def make_params(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in SHAPES]


def set_grads(params, seed):
    generator = torch.Generator().manual_seed(seed)
    grads = [torch.randn(p.shape, generator=generator) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return [g.double().numpy() for g in grads]


def fp32_orthogonaliser(coeffs):
    """An orthogonalise stage in fp32 (the same iteration as the bf16 one): isolates the update math from bf16."""

    def orthogonalise(G, steps):
        X = G.float() / (torch.linalg.vector_norm(G.float(), dim=(1, 2), keepdim=True) + 1e-7)
        for k in range(steps):
            a, b, c = coeffs[min(k, len(coeffs) - 1)]
            A = X @ X.mT
            X = a * X + (b * A + c * (A @ A)) @ X
        return X

    return orthogonalise


def newton_schulz(g, coeffs, steps=5):
    """One matrix (out, in): transposed to its wide orientation, normalised, iterated, transposed back."""
    tall = g.shape[0] > g.shape[1]
    X = g.T if tall else g
    X = X / (np.linalg.norm(X) + 1e-7)
    for k in range(steps):
        a, b, c = coeffs[min(k, len(coeffs) - 1)]
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def shape_scale(g):
    return max(1.0, g.shape[0] / g.shape[1]) ** 0.5


def deltas(before, params):
    """p_before - p_after of each matrix, float64 numpy."""
    return [(b - p.detach()).double().numpy() for b, p in zip(before, params)]
