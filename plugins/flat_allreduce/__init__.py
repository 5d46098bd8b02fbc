"""Default gradient averaging: one flat all-reduce per dtype after the whole backward."""

from __future__ import annotations

from golfc import Impl, PluginInfo, hookimpl

GOLFC_PLUGIN = PluginInfo(
    summary="gradients averaged over ranks by one flat all-reduce per dtype after the backward (baseline)",
    evidence="baseline semantics (the reference wraps its model in DDP); faster than DDP around the compiled model",
)


@hookimpl
def golfc_grad_average() -> Impl:
    return Impl(module="golfc_plugins.flat_allreduce.runtime", symbols="all_reduce_grads")
