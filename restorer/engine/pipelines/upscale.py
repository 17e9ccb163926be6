"""Super-resolution inference on photos of any size: overlapping tiles, blended seams, OOM retry.

The image is cut into tiles on a grid; each tile is run with extra context around it, the
context is cropped from the output, and neighbouring tiles overlap by `overlap` LR pixels
where they are blended with linear ramps, so no seam shows. Tile size comes from the free
memory of a GPU, or on a CPU from the size of the largest activation (see `cpu_tile`), unless
given; CUDA out-of-memory halves the tile and retries. Blending happens in one tile-row strip and
finished rows go straight into the uint8/uint16 output, so no full-resolution float array is held.
Precision: bf16 autocast on CPUs with native bf16, fp16 on CUDA, else fp32 (`precision=`).
Factors the model lacks (x3 from a x4 model, say) are produced by the model's factor
and a high-quality downscale. Colour goes through the model; alpha is resized separately.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import nn

from restorer.engine import budget
from restorer.engine.budget import CPU_TILE_BYTES
from restorer.engine.devices import free_memory_bytes, resolve_precision
from restorer.engine.errors import InputError, ModelError, is_out_of_memory
from restorer.engine.imageio import ImageData, from_float01, keep_colour_mode, resize_plane, to_float01
from restorer.engine.progress import CancelToken, ProgressCallback, cancel_between_layers, check, report

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
    """LR tile side: on a CPU the one that keeps each tile's activations near the caches, on a GPU
    the one that fits in about a quarter of the device's free memory."""
    if device.type == "cpu":
        return cpu_tile(model, scale)
    free = free_memory_bytes(device)
    if free is None:
        return 256
    channels = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)
    bytes_per_lr_px = channels * scale * scale * (2 if half else 4) * 6
    side = int(math.sqrt(max(1, free // 4) / bytes_per_lr_px))
    return max(MIN_TILE * 2, min(MAX_TILE, side // 8 * 8))


def cpu_tile(model: nn.Module, scale: int) -> int:
    """LR tile side for CPU inference.

    Measured (benchmarks/cpu_inference.py, docs/models.md "CPU inference"): the SR nets' time per
    output pixel is flat from 128 to 256 px tiles and about 4x worse at 512 px, where a tile's
    largest high-resolution activation passes 1 GB and every tile pays for fresh pages; small
    tiles pay for their context border instead (a 80 px tile with 24 px of context computes 2.6x
    its own area). So the largest activation (widest conv output x (tile x scale / 2)^2 x 4 bytes,
    the upsampler's shape) is held near `CPU_TILE_BYTES`, within [2 x context + 64, 256] px.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    channels = max((m.out_channels for m in convs), default=64)
    margin = int(getattr(model, "receptive_margin", 24))
    side = int(math.sqrt(CPU_TILE_BYTES / (channels * 4)) * 2 / max(1, scale))
    return max(2 * margin + 64, min(256, side // 16 * 16))



def use_graph(precision: str, dtype: torch.dtype) -> bool:
    """Whether `run_tiled` runs a frozen graph when not told: only for "auto", only where measured
    faster than the eager network on the CPU (docs/models.md "CPU inference")."""
    return (precision or "auto").lower() == "auto" and dtype in GRAPH_BY_DEFAULT


# dtypes whose frozen graph "auto" uses; empty: not measured faster than eager (docs/models.md "CPU inference")
GRAPH_BY_DEFAULT: frozenset = frozenset()


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


def _compute_plan(device: torch.device, precision: str, half: Optional[bool]) -> torch.dtype:
    if half is not None:  # the older boolean switch: fp16 or fp32
        return torch.float16 if half else torch.float32
    dtype = resolve_precision(device, precision)
    if dtype == torch.bfloat16 and device.type not in ("cpu", "cuda"):
        log.info("bf16 is not supported on %s; running in fp32", device.type)
        return torch.float32
    return dtype


def run_tiled(rgb: np.ndarray, model: nn.Module, scale: int, *, device: torch.device,
              tile: Optional[int] = None, overlap: int = 16, context: Optional[int] = None,
              half: Optional[bool] = None, precision: str = "auto",
              progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
              out_dtype: np.dtype | type = np.float32, graph: Optional[bool] = None) -> tuple[np.ndarray, int, int]:
    """Upscale an (H,W,3) image by the model's `scale`. Returns (out, tile, n_tiles).

    `rgb` is uint8, uint16 or float in [0, 1]; tiles are converted to float one at a time.
    `out` has `out_dtype` (float32 in [0, 1], uint8 or uint16): rows are written into it as soon
    as no later tile touches them, so no full-resolution float accumulator is held.
    `precision` is "auto" | "fp32" | "bf16" (see devices.resolve_precision); `half` (older switch)
    overrides it with fp16/fp32. `graph`: run a frozen TorchScript graph of the network on the CPU
    (see engine/frozen.py; it falls back to the network itself when one cannot be built); None
    chooses it where measured faster (`use_graph`), and never for an explicit "fp32".
    """
    dtype = _compute_plan(device, precision, half)
    ctx = context if context is not None else int(getattr(model, "receptive_margin", 24))
    if dtype == torch.float16:
        # fp16 runs on a copy: casting the caller's (cached) model would round its weights for later runs
        net = copy.deepcopy(model).half().to(device).eval()
    else:  # fp32, or bf16 by autocast (weights stay fp32; convs run in bf16 with fp32 accumulation)
        net = model.float().to(device).eval()
    # channels-last is much faster for these convs on CPU (oneDNN) and on CUDA tensor cores
    net = net.to(memory_format=torch.channels_last)
    tile = tile or auto_tile(net, scale, device, dtype == torch.float16)
    runner = None
    if device.type == "cpu" and (graph if graph is not None else use_graph(precision, dtype)):
        from restorer.engine.frozen import frozen_for_cpu

        runner = frozen_for_cpu(net, dtype)  # None: not possible here, the eager network runs
    while True:
        try:
            out, n = _run_grid(rgb, net, scale, device, dtype, tile, overlap, ctx, progress, cancel,
                               np.dtype(out_dtype), runner)
            return out, tile, n
        except Exception as exc:
            if not is_out_of_memory(exc) or tile <= MIN_TILE:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            tile = max(MIN_TILE, tile // 2)
            log.warning("out of memory: retrying with %d px tiles", tile)


def _store(out: np.ndarray, rows: slice, acc: np.ndarray, wsum: np.ndarray) -> None:
    block = acc / np.maximum(wsum, 1e-8)
    if out.dtype == np.float32:
        out[rows] = block
    else:
        out[rows] = from_float01(block, out.dtype)


def _run_grid(rgb: np.ndarray, net: nn.Module, scale: int, device: torch.device, dtype: torch.dtype,
              tile: int, overlap: int, ctx: int, progress: Optional[ProgressCallback],
              cancel: Optional[CancelToken], out_dtype: np.dtype,
              runner: Optional[torch.jit.ScriptModule] = None) -> tuple[np.ndarray, int]:
    h, w = rgb.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    ov = min(overlap, th // 2, tw // 2)
    ys, xs = _positions(h, th, ov), _positions(w, tw, ov)
    s = scale
    out = np.empty((h * s, w * s, 3), dtype=out_dtype)
    # one tile row of blend accumulators: rows [base, base + th*s) of the output
    acc = np.zeros((th * s, w * s, 3), dtype=np.float32)
    wsum = np.zeros((th * s, w * s, 1), dtype=np.float32)
    base = 0
    total = len(ys) * len(xs)
    done = 0
    started = time.monotonic()
    report(progress, 0, total, "upscaling", 0.0)
    # a frozen graph carries its own bf16 casts and runs no Python hooks: Cancel is checked between tiles
    use_autocast = dtype == torch.bfloat16 and runner is None
    grid = max(1, int(getattr(net, "pixel_grid", 1)))  # tiles start on multiples of it (CompactSR's unshuffle)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast), \
            cancel_between_layers(net, cancel if runner is None else None):  # Cancel stops inside a tile
        for y in ys:
            shift = y * s - base
            if shift > 0:  # rows above this tile row are final: write them out, slide the strip up
                _store(out, slice(base, base + shift), acc[:shift], wsum[:shift])
                keep = th * s - shift
                acc[:keep] = acc[shift:]
                wsum[:keep] = wsum[shift:]
                acc[keep:] = 0
                wsum[keep:] = 0
                base = y * s
            wy = _ramp(th, ov, y == ys[0], y == ys[-1]).repeat(s)[:, None, None]
            for x in xs:
                check(cancel)
                y0, x0 = max(0, y - ctx), max(0, x - ctx)
                y0, x0 = y0 - y0 % grid, x0 - x0 % grid  # a pixel-unshuffle model sees the image's own grid
                y1, x1 = min(h, y + th + ctx), min(w, x + tw + ctx)
                patch = torch.from_numpy(to_float01(rgb[y0:y1, x0:x1]).transpose(2, 0, 1)[None].copy())
                patch = patch.to(device=device, dtype=torch.float16 if dtype == torch.float16 else torch.float32)
                patch = patch.contiguous(memory_format=torch.channels_last)
                res = (net if runner is None else runner)(patch).float().clamp_(0, 1)[0].permute(1, 2, 0).cpu().numpy()
                oy, ox = (y - y0) * s, (x - x0) * s
                core = res[oy:oy + th * s, ox:ox + tw * s]
                wx = _ramp(tw, ov, x == xs[0], x == xs[-1]).repeat(s)[None, :, None]
                wgt = wy * wx
                acc[:, x * s:(x + tw) * s] += core * wgt
                wsum[:, x * s:(x + tw) * s] += wgt
                done += 1
                report(progress, done, total, f"tile {done}/{total}", time.monotonic() - started)
    _store(out, slice(base, base + th * s), acc, wsum)
    return out, total


def _downscale(rgb: np.ndarray, size: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """High-quality (Lanczos, per channel in float) resize of an (H,W,3) uint16 image to `dtype`.

    One channel is in float at a time, so a x4-then-down x3 keeps no full-size float RGB array.
    """
    out = np.empty((size[1], size[0], 3), dtype=dtype)
    for c in range(3):
        plane = Image.fromarray(to_float01(rgb[..., c]), mode="F").resize(size, Image.LANCZOS)
        out[..., c] = from_float01(np.asarray(plane), dtype)
    return out


def upscale_image(image: ImageData, model: nn.Module, model_scale: int, scale: int, *,
                  device: torch.device = torch.device("cpu"), tile: Optional[int] = None,
                  half: Optional[bool] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None, precision: str = "auto") -> UpscaleResult:
    """Upscale an image by `scale` with a model of factor `model_scale` (>= scale).

    Refused before any work (InputError) when the job cannot fit in the free memory (see
    `engine.budget`). The result keeps the input's bit depth and colour mode (a grey photo stays grey).
    `precision`: "auto" (bf16 on CPUs with native bf16, fp16 on CUDA, else fp32), "fp32" or "bf16".
    """
    if scale not in SCALES:
        raise InputError(f"unsupported scale x{scale} (choose from {', '.join(f'x{s}' for s in SCALES)})")
    if model_scale < scale:
        raise ModelError(f"a x{model_scale} model cannot upscale x{scale}")
    if tile is not None and tile < MIN_TILE:
        raise InputError(f"tile size must be at least {MIN_TILE} px")
    w, h = image.size
    channels = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)
    budget.check_upscale((w, h), scale, model_scale, tile=tile, channels=channels,
                         bytes_per_channel=image.rgb.dtype.itemsize)
    target = (w * scale, h * scale)
    final_dtype = np.dtype(image.rgb.dtype) if image.rgb.dtype in (np.uint8, np.uint16) else np.dtype(np.uint8)
    # a non-native factor keeps the model's output in uint16 until the Lanczos downscale
    run_dtype = final_dtype if model_scale == scale else np.dtype(np.uint16)
    out, used_tile, n = run_tiled(image.rgb, model, model_scale, device=device, tile=tile, half=half,
                                  precision=precision, progress=progress, cancel=cancel, out_dtype=run_dtype)
    if model_scale != scale:
        out = _downscale(out, target, final_dtype)
    out = keep_colour_mode(image, out)
    alpha = resize_plane(image.alpha, target) if image.alpha is not None else None
    return UpscaleResult(image.with_pixels(out, alpha), model_scale, used_tile, n)
