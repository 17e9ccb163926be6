"""Compute device choice: cpu / cuda / mps, and which reduced precision runs natively on it.

Precision choices for inference are "auto", "fp32" and "bf16". "auto" means fp16 on CUDA,
bf16 on a CPU that has native bf16 arithmetic (AVX512-BF16 or AMX: measured about twice as fast
as fp32 for the SR models, outputs within 0.05 dB Y-PSNR, see docs/models.md "CPU inference"),
and fp32 everywhere else (CPUs without it would emulate bf16, which is slower than fp32).
"""

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


PRECISION_CHOICES = ("auto", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), not by emulation."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(p is not None for p in probes):
        try:
            return any(bool(p()) for p in probes if p is not None)
        except RuntimeError:  # pragma: no cover - a torch build without the CPU probes
            pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


def resolve_precision(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The compute dtype for inference on `device` for a user's precision choice."""
    pref = (precision or "auto").lower()
    if pref not in PRECISION_CHOICES:
        raise InputError(f"unknown precision '{precision}' (choose from {', '.join(PRECISION_CHOICES)})")
    if pref == "fp32":
        return torch.float32
    if pref == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


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
