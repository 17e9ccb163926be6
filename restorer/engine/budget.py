"""Memory a job needs, estimated from the image size before any work, and a check against free RAM.

A 12000x9000 photo upscaled x8 needs far more memory than most machines have; it must be
refused at once with the figure, not fail with a MemoryError after minutes of work.

The tiled upscale (``pipelines/upscale.py``) writes finished rows straight into the output
array (uint8, or uint16 until the Lanczos step of a factor the model lacks) and blends tiles in a
float32 strip one tile-row high, so its memory is the output itself, the strip, the tile's
activations (on a CPU the tile is sized to keep the largest activation near
``CPU_TILE_BYTES``; about three such tensors are alive at once) and the saved copy of the
result. Measured with ``ru_maxrss`` on a 1024x768 photo x4 with sr-x4-compact: 1.11 GB peak, of
which 0.93 GB is the interpreter, torch and the model; the estimate gives the job about 1 GB.
Inpainting
keeps a few copies of the photo plus one model window at a time (a 300 px hole in a 1.4 Mpx photo
peaked at 1.45 GB with the shipped model, most of it contextual attention at the 512 px work size;
thin scratches filled at 768 px can need more). When the pipelines change,
re-measure and update the constants.

Free memory comes from ``/proc/meminfo`` (MemAvailable) on Linux, ``GlobalMemoryStatusEx`` on
Windows, ``os.sysconf`` elsewhere; psutil is not a dependency. When it cannot be read no job is
refused.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Optional

from restorer.engine.errors import InputError

log = logging.getLogger(__name__)

STRIP_BYTES_PER_PX = 16  # the float32 RGB blend strip and its weight plane, per output pixel of one tile row
ALIVE_ACTIVATIONS = 3  # largest float32 activations alive at once while a tile runs
SAVED_COPIES = 1.5  # saving the result: Pillow's copy of it and the encoded bytes (about half its size)
CONTEXT_PX = 24  # the context a tile is run with on each side (upscale.py)
INPAINT_WINDOW_BYTES = 1_500_000_000  # one 512 px model window with contextual attention (measured 1.45 GB)
DEFAULT_TILE = 256
#: on a CPU, upscale tiles keep their largest activation near this (pipelines/upscale.py: cpu_tile)
CPU_TILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Estimate:
    """Bytes a job needs; `tile_bytes` is the part a smaller tile would reduce."""

    total: int
    tile_bytes: int = 0


def _gb(n: float) -> str:
    return f"{n / 1e9:.0f} GB" if n >= 10e9 else f"{n / 1e9:.1f} GB"


def upscale_estimate(size: tuple[int, int], scale: int, model_scale: Optional[int] = None, *,
                     tile: Optional[int] = None, channels: int = 64, bytes_per_channel: int = 1) -> Estimate:
    """Memory an upscale of an image of `size` (w, h) by `scale` with a x`model_scale` model needs."""
    w, h = (int(v) for v in size)
    ms = int(model_scale or scale)
    channels = max(1, int(channels))
    in_px = w * h
    native = ms == scale
    out_bytes = in_px * ms * ms * 3 * (bytes_per_channel if native else 2)  # uint16 until the Lanczos step
    final = in_px * scale * scale * 3 * bytes_per_channel
    if tile is None:  # the CPU rule: the largest activation near CPU_TILE_BYTES
        largest = CPU_TILE_BYTES
        side = int(math.sqrt(CPU_TILE_BYTES / (channels * 4)) * 2 / max(1, ms))
        side = max(2 * CONTEXT_PX + 64, min(256, side // 16 * 16))  # as upscale.cpu_tile
    else:
        side = int(tile)
        largest = channels * ((side + 2 * CONTEXT_PX) * ms / 2) ** 2 * 4
    side = min(side, max(w, h))
    tile_bytes = ALIVE_ACTIVATIONS * largest
    strip = (side + 2 * CONTEXT_PX) * ms * w * ms * STRIP_BYTES_PER_PX
    total = (in_px * 3 * bytes_per_channel + out_bytes + strip + tile_bytes
             + final * (SAVED_COPIES if native else SAVED_COPIES + 1))  # + the downscaled result
    return Estimate(int(total), int(tile_bytes))


def inpaint_estimate(size: tuple[int, int], *, bytes_per_channel: int = 1) -> Estimate:
    """Memory an inpaint of an image of `size` (w, h) needs: the photo, its output copy, the mask,
    the encoded result, one window."""
    w, h = (int(v) for v in size)
    in_px = w * h
    total = in_px * (3 * bytes_per_channel * 4 + 2) + INPAINT_WINDOW_BYTES
    return Estimate(int(total), INPAINT_WINDOW_BYTES)


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _windows_available() -> Optional[int]:  # pragma: no cover - Windows only
    try:
        import ctypes

        class MEMORYSTATUSEX(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

        stat = MEMORYSTATUSEX()
        stat.dwLength = ctypes.sizeof(MEMORYSTATUSEX)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(stat)):  # type: ignore[attr-defined]
            return int(stat.ullAvailPhys)
    except Exception:
        return None
    return None


def available_memory() -> Optional[int]:
    """Bytes of RAM available to a new job now, or None when unknown."""
    if sys.platform == "win32":  # pragma: no cover
        return _windows_available()
    found = _meminfo_available()
    if found is not None:
        return found
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(estimate: Estimate, what: str, advice: str) -> None:
    """Raise InputError when `estimate` exceeds the available memory (nothing is refused when unknown)."""
    free = available_memory()
    if free is None:
        log.debug("free memory unknown; %s needs about %s", what, _gb(estimate.total))
        return
    if estimate.total > free:
        raise InputError(f"{what} needs about {_gb(estimate.total)} of memory, this machine has "
                         f"{_gb(free)} free; {advice}")
    log.debug("%s needs about %s of %s free", what, _gb(estimate.total), _gb(free))


def check_upscale(size: tuple[int, int], scale: int, model_scale: Optional[int] = None, *,
                  tile: Optional[int] = None, channels: int = 64, bytes_per_channel: int = 1,
                  name: str = "this upscale") -> Estimate:
    est = upscale_estimate(size, scale, model_scale, tile=tile, channels=channels,
                           bytes_per_channel=bytes_per_channel)
    w, h = size
    advice = "use a smaller scale or a smaller image"
    if est.tile_bytes > est.total // 2:
        advice = "use --tile 128 (smaller tiles) or a smaller scale"
    check_fits(est, f"{name} ({w}x{h} x{scale})", advice)
    return est


def check_inpaint(size: tuple[int, int], *, bytes_per_channel: int = 1, name: str = "this fill") -> Estimate:
    est = inpaint_estimate(size, bytes_per_channel=bytes_per_channel)
    w, h = size
    check_fits(est, f"{name} ({w}x{h})", "use a smaller image")
    return est
