"""Compute device choice: cpu / cuda / mps, and whether half precision is safe."""

from __future__ import annotations

import logging

import torch

from restorer.engine.errors import InputError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(preference: str = "auto") -> torch.device:
    """Return the torch device for a user preference; a missing accelerator is a clear error."""
    pref = (preference or "auto").lower()
    if pref not in DEVICE_CHOICES and not pref.startswith("cuda:"):
        raise InputError(f"unknown device '{preference}' (choose from {', '.join(DEVICE_CHOICES)})")
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but no CUDA GPU is available")
    if pref == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError("device 'mps' was requested but Apple's MPS is not available")
    return torch.device(pref)


def half_is_safe(device: torch.device) -> bool:
    """Half precision for inference only on CUDA (CPU half is slow, MPS half is inconsistent)."""
    return device.type == "cuda"


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA ({torch.cuda.get_device_name(idx)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory on the device, or None when unknown (CPU: available RAM if readable)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
