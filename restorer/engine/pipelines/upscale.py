"""Super-resolution inference on photos of any size: overlapping tiles, blended seams, OOM retry.

The image is cut into tiles on a grid; each tile is run with extra context around it, the
context is cropped from the output, and neighbouring tiles overlap by `overlap` LR pixels
where they are blended with linear ramps, so no seam shows. Tile size comes from the free
memory of the device unless given; CUDA out-of-memory halves the tile and retries.
Factors the model lacks (x3 from a x4 model, say) are produced by the model's factor
and a high-quality downscale. Colour goes through the model; alpha is resized separately.
"""

from __future__ import annotations

import copy

import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import nn

from restorer.engine.devices import free_memory_bytes, half_is_safe
from restorer.engine.errors import InputError, ModelError
from restorer.engine.imageio import ImageData, from_float01, keep_colour_mode, resize_plane, to_float01
from restorer.engine.progress import CancelToken, ProgressCallback, check, report

log = logging.getLogger(__name__)

MIN_TILE = 32
MAX_TILE = 1024
SCALES = (2, 3, 4, 8)


@dataclass(frozen=True)
class UpscaleResult:
    image: ImageData
    model_scale: int
    tile: int
    tiles: int


def model_scale_for(target: int, available: list[int]) -> int:
    """The model factor to use for a requested factor: itself, else the next larger one."""
    if target in available:
        return target
    larger = sorted(s for s in available if s > target)
    if not larger:
        raise InputError(f"no model can upscale x{target} (installed factors: "
                         f"{', '.join(f'x{s}' for s in sorted(set(available))) or 'none'})")
    return larger[0]


def auto_tile(model: nn.Module, scale: int, device: torch.device, half: bool) -> int:
    """LR tile side that fits in about a quarter of the device's free memory."""
    free = free_memory_bytes(device)
    if free is None:
        return 256
    channels = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)
    bytes_per_lr_px = channels * scale * scale * (2 if half else 4) * 6
    side = int(math.sqrt(max(1, free // 4) / bytes_per_lr_px))
    return max(MIN_TILE * 2, min(MAX_TILE, side // 8 * 8))


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    w = np.ones(length, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = np.minimum(w[:overlap], ramp[: min(overlap, length)])
        if not at_end:
            w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1][: min(overlap, length)])
    return w


def _positions(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    pos = list(range(0, size - tile, stride))
    pos.append(size - tile)
    return pos


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def run_tiled(rgb01: np.ndarray, model: nn.Module, scale: int, *, device: torch.device,
              tile: Optional[int] = None, overlap: int = 16, context: Optional[int] = None,
              half: Optional[bool] = None, progress: Optional[ProgressCallback] = None,
              cancel: Optional[CancelToken] = None) -> tuple[np.ndarray, int, int]:
    """Upscale an (H,W,3) float32 [0,1] array by the model's `scale`. Returns (out, tile, n_tiles)."""
    h, w = rgb01.shape[:2]
    half = half_is_safe(device) if half is None else half
    ctx = context if context is not None else int(getattr(model, "receptive_margin", 24))
    # half precision runs on a copy: casting the caller's (cached) model would round its weights for later runs
    net = (copy.deepcopy(model).half() if half else model.float()).to(device).eval()
    # channels-last is much faster for these convs on CPU (oneDNN) and on CUDA tensor cores
    net = net.to(memory_format=torch.channels_last)
    dtype = torch.float16 if half else torch.float32
    tile = tile or auto_tile(net, scale, device, half)
    while True:
        try:
            out, n = _run_grid(rgb01, net, scale, device, dtype, tile, overlap, ctx, progress, cancel)
            return out, tile, n
        except Exception as exc:
            if not _is_oom(exc) or tile <= MIN_TILE:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            tile = max(MIN_TILE, tile // 2)
            log.warning("out of memory: retrying with %d px tiles", tile)


def _run_grid(rgb01: np.ndarray, net: nn.Module, scale: int, device: torch.device, dtype: torch.dtype,
              tile: int, overlap: int, ctx: int, progress: Optional[ProgressCallback],
              cancel: Optional[CancelToken]) -> tuple[np.ndarray, int]:
    h, w = rgb01.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    ov = min(overlap, th // 2, tw // 2)
    ys, xs = _positions(h, th, ov), _positions(w, tw, ov)
    acc = np.zeros((h * scale, w * scale, 3), dtype=np.float32)
    wsum = np.zeros((h * scale, w * scale, 1), dtype=np.float32)
    total = len(ys) * len(xs)
    src = torch.from_numpy(np.ascontiguousarray(rgb01.transpose(2, 0, 1)))
    done = 0
    report(progress, 0, total, "upscaling")
    with torch.inference_mode():
        for y in ys:
            for x in xs:
                check(cancel)
                y0, x0 = max(0, y - ctx), max(0, x - ctx)
                y1, x1 = min(h, y + th + ctx), min(w, x + tw + ctx)
                patch = src[:, y0:y1, x0:x1][None].to(device=device, dtype=dtype)
                patch = patch.contiguous(memory_format=torch.channels_last)
                res = net(patch).float().clamp_(0, 1)[0].permute(1, 2, 0).cpu().numpy()
                oy, ox = (y - y0) * scale, (x - x0) * scale
                core = res[oy:oy + th * scale, ox:ox + tw * scale]
                wy = _ramp(th, ov, y == ys[0], y == ys[-1]).repeat(scale)
                wx = _ramp(tw, ov, x == xs[0], x == xs[-1]).repeat(scale)
                wgt = (wy[:, None] * wx[None, :])[..., None]
                acc[y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += core * wgt
                wsum[y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += wgt
                done += 1
                report(progress, done, total, f"tile {done}/{total}")
    return acc / np.maximum(wsum, 1e-8), total


def _downscale(rgb01: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """High-quality (Lanczos, per channel in float) resize of an (H,W,3) float image."""
    chans = [np.asarray(Image.fromarray(rgb01[..., c].astype(np.float32), mode="F").resize(size, Image.LANCZOS))
             for c in range(3)]
    return np.clip(np.stack(chans, axis=-1), 0.0, 1.0)


def upscale_image(image: ImageData, model: nn.Module, model_scale: int, scale: int, *,
                  device: torch.device = torch.device("cpu"), tile: Optional[int] = None,
                  half: Optional[bool] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> UpscaleResult:
    """Upscale an image by `scale` with a model of factor `model_scale` (>= scale).

    Refused before any work (InputError) when the job cannot fit in the free memory (see
    `engine.budget`). The result keeps the input's bit depth and colour mode (a grey photo stays grey).
    """
    if scale not in SCALES:
        raise InputError(f"unsupported scale x{scale} (choose from {', '.join(f'x{s}' for s in SCALES)})")
    if model_scale < scale:
        raise ModelError(f"a x{model_scale} model cannot upscale x{scale}")
    if tile is not None and tile < MIN_TILE:
        raise InputError(f"tile size must be at least {MIN_TILE} px")
    w, h = image.size
    from restorer.engine import budget

    channels = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)
    budget.check_upscale((w, h), scale, model_scale, tile=tile, channels=channels,
                         bytes_per_channel=image.rgb.dtype.itemsize)
    rgb01 = to_float01(image.rgb)
    out, used_tile, n = run_tiled(rgb01, model, model_scale, device=device, tile=tile, half=half,
                                  progress=progress, cancel=cancel)
    target = (w * scale, h * scale)
    if model_scale != scale:
        out = _downscale(out, target)
    rgb = keep_colour_mode(image, from_float01(out, image.rgb.dtype))
    alpha = resize_plane(image.alpha, target) if image.alpha is not None else None
    return UpscaleResult(image.with_pixels(rgb, alpha), model_scale, used_tile, n)
