"""Frozen TorchScript graphs of the SR networks for CPU inference (oneDNN fusion, weights pre-packed).

`frozen_for_cpu(net, dtype)` traces an eval-mode, channels-last network on one small example input
(`torch.jit.trace`: no source code and no compiler needed, so it works in a PyInstaller bundle),
freezes it (weights become constants; bias and element-wise ops fused into the convolutions) and
runs `torch.jit.optimize_for_inference` (oneDNN's pre-packed weights). In bf16 the trace is taken
under autocast, so the weights' bf16 copies are folded in once, not cast again on every tile; the
arithmetic is the same as eager autocast's.

Before a graph is used it is checked: it must run a second, odd input shape (edge tiles differ from
full tiles; the graph must not be specialised to one size) and match the eager network on it within
`TOLERANCE`. Any failure (a torch build without TorchScript, an operation the tracer cannot record, a
mismatch) is logged once and `None` is returned: the caller runs the eager network instead.

A network with hooks (cancel-between-layers, or a caller's own) is never traced, because a graph does
not run Python hooks: callers decide per call (`upscale.run_tiled` keeps its cancel check between
tiles, which are well under a second of CPU work each). Graphs are cached per network object, per
dtype, and rebuilt when any parameter is modified in place (its version counter moves).
"""

from __future__ import annotations

import logging
import warnings
import weakref
from typing import Optional

import torch
from torch import nn

log = logging.getLogger(__name__)

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2}  # max abs difference vs eager, outputs in [0, 1]
EXAMPLE_SIDE = 48  # traced at 48 x 48, checked at 40 x 56: small, so tracing costs well under a second

_cache: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _versions(net: nn.Module) -> tuple:
    return tuple((p.data_ptr(), p._version) for p in net.parameters())


def has_hooks(net: nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def _example(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g).contiguous(memory_format=torch.channels_last)


def _build(net: nn.Module, dtype: torch.dtype) -> torch.jit.ScriptModule:
    bf16 = dtype == torch.bfloat16
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 marks TorchScript deprecated; it still works
        graph = torch.jit.trace(net, _example(EXAMPLE_SIDE, EXAMPLE_SIDE, 0), check_trace=False)
        graph = torch.jit.freeze(graph.eval())
        graph = torch.jit.optimize_for_inference(graph)
        x = _example(EXAMPLE_SIDE - 8, EXAMPLE_SIDE + 8, 1)  # another shape: edge tiles must work too
        for _ in range(3):  # the profiling executor specialises after a few runs: check what it settles on
            got = graph(x).float()
        want = net(x).float()
    err = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    if not err <= TOLERANCE[dtype]:
        raise RuntimeError(f"frozen graph differs from the network by {err:.3g} (tolerance {TOLERANCE[dtype]})")
    return graph


def frozen_for_cpu(net: nn.Module, dtype: torch.dtype) -> Optional[torch.jit.ScriptModule]:
    """The checked frozen graph of `net` (eval, channels-last, on the CPU) for `dtype` (fp32 or bf16),
    or None when it cannot be built (then run `net` itself). Cached per network and dtype."""
    if dtype not in TOLERANCE or net.training or has_hooks(net):
        return None
    entry = _cache.get(net)
    versions = _versions(net)
    if entry is None or entry["versions"] != versions:
        entry = {"versions": versions}
        _cache[net] = entry
    if dtype not in entry:
        try:
            entry[dtype] = _build(net, dtype)
            log.info("frozen %s graph built for %s", str(dtype).replace("torch.", ""), type(net).__name__)
        except Exception as exc:  # any failure: the eager network is always correct
            log.warning("no frozen graph for %s (%s); running it eagerly", type(net).__name__, exc)
            entry[dtype] = None
    return entry[dtype]
