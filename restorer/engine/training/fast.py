"""Fast-step helpers shared by the trainers: optimizers, autocast, memory format, compilation.

A training step on a GPU is fast when the host never waits for the device inside it: no
`.item()`, `float(tensor)`, `.cpu()` or Python branch on a tensor value. The trainers keep their
losses as device tensors (the loop in `common.py` sums them and reads them on logging steps
only), use fused Adam on CUDA (one kernel for all parameters) and the foreach implementation
elsewhere, run the networks in bf16 autocast and channels-last on CUDA, and can wrap the
generator in `torch.compile(mode="reduce-overhead")` (CUDA graphs) with a probe step that falls
back to eager mode when compiling or capturing fails.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

log = logging.getLogger(__name__)


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
              device: torch.device) -> torch.optim.Adam:
    """Adam with the fastest implementation the device has: fused on CUDA, foreach elsewhere."""
    params = list(params)
    if device.type == "cuda":
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError) as exc:  # an old torch without fused Adam for these dtypes
            log.warning("fused Adam unavailable (%s); using the foreach implementation", exc)
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate. A float is written (the fused and foreach kernels read it
    on the host, so no device copy or sync happens)."""
    for g in opt.param_groups:
        g["lr"] = lr


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA, a no-op context elsewhere (CPU training stays in float32)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def channels_last(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" and x.dim() == 4 else x


def maybe_compile(net: nn.Module, enabled: bool, device: torch.device, probe: Callable[[nn.Module], None],
                  mode: str = "reduce-overhead", events: Any = None, allow_cpu: bool = False) -> nn.Module:
    """`torch.compile(net, mode=mode)` when enabled (on CUDA, or anywhere with `allow_cpu`), checked
    by running `probe(compiled)` once (a forward and backward on a small batch). Any failure of the
    compiler, of graph capture or of the probe gives back the eager `net` with a warning, so a
    machine whose toolchain cannot compile still trains.
    """
    if not enabled or (device.type != "cuda" and not allow_cpu):
        return net
    try:
        compiled = torch.compile(net, mode=mode)
        probe(compiled)
        net.zero_grad(set_to_none=True)
    except Exception as exc:  # compiler toolchain problems must never stop training
        log.warning("torch.compile(mode=%r) failed (%s: %s); training in eager mode", mode,
                    exc.__class__.__name__, str(exc)[:200])
        net.zero_grad(set_to_none=True)
        if events is not None:
            events.emit("info", message=f"torch.compile failed ({exc.__class__.__name__}); eager mode")
        return net
    if events is not None:
        events.emit("info", message=f"generator compiled (torch.compile mode={mode})")
    return compiled


def mark_step() -> None:
    """Tell cudagraph trees a new iteration starts (needed between replays of reduce-overhead graphs)."""
    fn = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if fn is not None:
        fn()


def detach_losses(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss tensors detached and in float32, still on the device (no sync)."""
    return {k: v.detach().float() for k, v in losses.items()}


def is_compiled(net: nn.Module) -> bool:
    return hasattr(net, "_orig_mod")


def first_param_device(net: nn.Module) -> Optional[torch.device]:
    for p in net.parameters():
        return p.device
    return None
