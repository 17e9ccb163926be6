"""Inpaint the masked parts of a photo, one window around each hole region at a time.

The model never sees a full large frame: the mask's connected regions (8-connectivity) are
found, each gets a window of context around it (its bounding box grown by
``max(longer bbox side, context)`` px on every side, clipped to the image), regions whose windows
overlap are merged, and each window is

1. cut out; if its longer side exceeds `work_size` it is downscaled (area averaging) to fit,
   and the hole downscaled conservatively (any hole pixel under an output pixel makes a hole);
2. padded (edge replication, padding marked as known) to a multiple of 8, the network's need;
3. run through the model, the result pasted into the hole at work scale, then resized back;
4. pasted into the image *only where the mask is set*: pixels outside the mask are returned
   byte-identical. With ``feather > 0`` the first `feather` px inside the hole's edge blend
   the network's output with a local fill of the surrounding known pixels (normalised
   convolution of the known ring), which hides small tone steps at the seam. The original
   pixels under the mask are never used: they are the damage.

Works for uint8 and uint16 RGB (or an `ImageData`, whose ``rgb`` is used). Alpha is the caller's
business (pass RGB only; keep alpha untouched). Labelling is numpy only (runs union-find,
`restorer/engine/regions.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorer.engine.devices import resolve_precision
from restorer.engine.errors import InputError
from restorer.engine.progress import CancelToken, ProgressCallback, cancel_between_layers, check, report
from restorer.engine.regions import region_boxes

MULTIPLE = 8
WORK_SIZE = 512  # the longest window side the model sees for wide holes
THIN_WIDTH = 64  # px: holes at most this wide (see hole_width) are filled at up to THIN_WORK_SIZE
THIN_WORK_SIZE = 768  # contextual attention costs grow as side^4: 1024 px took ~10x the time of 512 px on CPU


@dataclass(frozen=True)
class Window:
    """A crop window [y0:y1, x0:x1] and the bounding box [by0:by1, bx0:bx1] of its hole pixels."""

    y0: int
    x0: int
    y1: int
    x1: int
    by0: int
    bx0: int
    by1: int
    bx1: int


def _grow(box: tuple[int, int, int, int], h: int, w: int, context: int) -> tuple[int, int, int, int]:
    y0, x0, y1, x1 = box
    m = max(y1 - y0, x1 - x0, context)
    return max(0, y0 - m), max(0, x0 - m), min(h, y1 + m), min(w, x1 + m)


def _block_boxes(mask: np.ndarray, block: int) -> list[tuple[int, int, int, int]]:
    """Region boxes of the mask reduced to `block` x `block` cells (a cell with any hole pixel is a
    hole), scaled back and clipped: regions closer than about a cell are joined, boxes grow by
    less than a cell. Keeps labelling and merging cheap on speckled masks."""
    h, w = mask.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((hb * block, wb * block), dtype=bool)
    padded[:h, :w] = mask
    small = padded.reshape(hb, block, wb, block).any(axis=(1, 3))
    return [(y0 * block, x0 * block, min(h, y1 * block), min(w, x1 * block))
            for y0, x0, y1, x1 in region_boxes(small)]


def plan_windows(mask: np.ndarray, context: int = 64) -> list[Window]:
    """The windows the model will run on: one per group of regions whose windows overlap.

    Each window holds its group's hole pixels and no others, and lies inside the image.
    Masks with very many regions (speckle) are first grouped on a grid of `context/4`-px cells.
    """
    h, w = mask.shape
    context = max(1, int(context))
    runs = int(np.count_nonzero(np.diff(mask.astype(np.int8), axis=1, prepend=0) == 1))
    cell = max(2, context // 4)
    boxes = region_boxes(mask) if runs <= 200_000 else _block_boxes(mask, cell)
    if len(boxes) > 256:
        boxes = _block_boxes(mask, cell)
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        wins = [_grow(b, h, w, context) for b in boxes]
        merged: list[tuple[int, int, int, int]] = []
        used = [False] * len(boxes)
        for i in range(len(boxes)):
            if used[i]:
                continue
            cur, win = boxes[i], wins[i]
            for j in range(i + 1, len(boxes)):
                if used[j]:
                    continue
                wj = wins[j]
                if win[0] < wj[2] and wj[0] < win[2] and win[1] < wj[3] and wj[1] < win[3]:
                    b = boxes[j]
                    cur = (min(cur[0], b[0]), min(cur[1], b[1]), max(cur[2], b[2]), max(cur[3], b[3]))
                    win = _grow(cur, h, w, context)
                    used[j] = True
                    changed = True
            merged.append(cur)
        boxes = merged
    out = []
    for b in sorted(boxes):
        y0, x0, y1, x1 = _grow(b, h, w, context)
        out.append(Window(y0, x0, y1, x1, *b))
    return out


# ----------------------------------------------------------------------------- helpers
def _as_rgb_array(image: Any) -> np.ndarray:
    arr = getattr(image, "rgb", image)
    if not isinstance(arr, np.ndarray):
        raise InputError(f"the image must be an RGB array or ImageData, got {type(image).__name__}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"the image must be RGB (H, W, 3), got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise InputError(f"the image must be 8- or 16-bit, got {arr.dtype}")
    return arr


def _check_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise InputError(f"the mask must be an array, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise InputError(f"the mask must be one channel (H, W), got shape {mask.shape}")
    if mask.shape != shape:
        raise InputError(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}; "
            "they must be the same size")
    m = mask.astype(bool) if mask.dtype != bool else mask
    if not m.any():
        raise InputError("the mask is empty: mark the areas to fill")
    return m


def hole_width(hole: np.ndarray) -> int:
    """The hole's width in px: twice the largest distance (chessboard) from a hole pixel to the
    nearest known pixel, i.e. the widest stroke or box side the model has to bridge.

    Counted by eroding the hole one pixel at a time (3x3); large holes are first reduced by an
    integer factor (conservatively: any hole pixel makes a hole) so the count stays cheap.
    """
    m = torch.from_numpy(np.ascontiguousarray(hole, dtype=np.float32))[None, None]
    k = max(1, int(np.ceil(max(m.shape[-2:]) / 512)))
    if k > 1:
        m = F.max_pool2d(m, k, k, ceil_mode=True)
    steps = 0
    while m.any():
        m = -F.max_pool2d(-m, 3, 1, 1)  # erosion (outside the image counts as hole)
        steps += 1
    return 2 * steps * k


def _fit(h: int, w: int, limit: int) -> tuple[int, int]:
    """The work-scale size of an h x w window: its longer side brought down to `limit`, never up."""
    if max(h, w) <= limit:
        return h, w
    s = limit / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _run_model(model: nn.Module, img: torch.Tensor, hole: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The model's filled image in float32; `dtype` bf16 runs its convolutions under autocast."""
    with torch.autocast(img.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = model(img, hole)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    return out.float()


def _fill_dtype(device: torch.device, precision: str) -> torch.dtype:
    """fp32 or bf16 (CPU or CUDA only): the pipeline's precision choice resolved for Fill."""
    dtype = resolve_precision(device, precision)
    if dtype == torch.bfloat16 and device.type in ("cpu", "cuda"):
        return torch.bfloat16
    return torch.float32


def _inward_weight(hole: torch.Tensor, feather: int) -> torch.Tensor:
    """Model weight inside the hole: 0.5 at the edge rising to 1 at `feather` px in; 0 outside."""
    known = 1.0 - hole
    depth = torch.zeros_like(hole)
    cur = known
    for _ in range(feather):  # pixels reached by growing the known area one px at a time
        cur = F.max_pool2d(cur, 3, 1, 1)
        depth = depth + (1.0 - cur)
    # depth = feather for pixels deeper than `feather`, 0 at the first hole pixel
    w = 0.5 + 0.5 * depth / max(1, feather)
    return w * hole


def _local_fill(img: torch.Tensor, hole: torch.Tensor, radius: int) -> torch.Tensor:
    """Known pixels' colours spread into the hole (normalised box-blur convolution)."""
    known = 1.0 - hole
    k = 2 * radius + 1
    num = F.avg_pool2d(F.pad(img * known, [radius] * 4, mode="replicate"), k, 1)
    den = F.avg_pool2d(F.pad(known, [radius] * 4, mode="replicate"), k, 1)
    return num / den.clamp_min(1e-6)


# ----------------------------------------------------------------------------- the pipeline
def inpaint_image(image: Any, mask: np.ndarray, model: nn.Module, *, device: torch.device = torch.device("cpu"),
                  work_size: int = WORK_SIZE, thin_width: int = THIN_WIDTH, context: int = 64,
                  feather: int = 3,
                  progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                  precision: str = "auto") -> np.ndarray:
    """Fill `mask` (bool (H, W), True = fill) in `image` with `model`; returns an array like the image.

    `model(image, mask)` takes (B,3,h,w) in [0,1] and (B,1,h,w) (1 = hole), h and w multiples
    of 8, and returns the filled image (or a tuple whose last item is). `context` is the
    least context margin (px) around each region; the margin is at least the region's longer
    side. `work_size` bounds the side the model sees, except that holes at most `thin_width` px
    wide (see :func:`hole_width`; 0: off) are filled at up to ``THIN_WORK_SIZE`` so thin
    scratches keep their surroundings' detail. Progress is reported once per region
    group; `cancel` is checked before each. Pixels outside the mask are never changed.
    `precision` "auto" | "fp32" | "bf16": auto is bf16 on CPUs with native bf16 (see
    devices.resolve_precision; fp16 is not used for Fill), else fp32.
    """
    rgb = _as_rgb_array(image)
    h, w = rgb.shape[:2]
    hole_np = _check_mask(mask, (h, w))
    from restorer.engine import budget

    budget.check_inpaint((w, h), bytes_per_channel=rgb.dtype.itemsize)  # before any work
    if work_size < 32:
        raise InputError(f"work_size must be at least 32, got {work_size}")
    device = torch.device(device)
    model.to(device)
    # channels-last: oneDNN's convolutions are faster in it on the CPU (measured 1.2x for the whole
    # network in bf16, docs/models.md "CPU inference"); the weights' values do not change
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    model.to(memory_format=layout)
    maxval = 65535.0 if rgb.dtype == np.uint16 else 255.0
    dtype = _fill_dtype(device, precision)
    windows = plan_windows(hole_np, context)
    out = rgb.copy()
    total = len(windows)
    started = time.monotonic()
    report(progress, 0, total, "inpainting", 0.0)
    with torch.inference_mode(), cancel_between_layers(model, cancel):  # Cancel stops inside a window too
        for n, win in enumerate(windows):
            check(cancel)
            crop = rgb[win.y0:win.y1, win.x0:win.x1]
            hole_c = hole_np[win.y0:win.y1, win.x0:win.x1]
            x = torch.from_numpy(crop.astype(np.float32) / maxval).permute(2, 0, 1)[None].to(device)
            m = torch.from_numpy(hole_c.astype(np.float32))[None, None].to(device)
            wh, ww = crop.shape[:2]
            # thin holes at a larger size: downscaling would blur the detail a scratch runs through
            thin = thin_width > 0 and max(wh, ww) > work_size and hole_width(hole_c) <= thin_width
            th, tw = _fit(wh, ww, max(work_size, THIN_WORK_SIZE) if thin else work_size)
            if (th, tw) != (wh, ww):
                xs = F.interpolate(x, size=(th, tw), mode="area")
                ms = (F.interpolate(m, size=(th, tw), mode="area") > 0).float()
            else:
                xs, ms = x, m
            ph, pw = (-th) % MULTIPLE, (-tw) % MULTIPLE
            if ph or pw:
                xs = F.pad(xs, (0, pw, 0, ph), mode="replicate")
                ms = F.pad(ms, (0, pw, 0, ph), value=0.0)
            xs = xs * (1.0 - ms)  # the model never sees the damage
            xs, ms = xs.contiguous(memory_format=layout), ms.contiguous(memory_format=layout)
            pred = _run_model(model, xs, ms, dtype)[..., :th, :tw].clamp(0.0, 1.0)
            ms_c = ms[..., :th, :tw]
            comp = pred * ms_c + xs[..., :th, :tw] * (1.0 - ms_c)
            if (th, tw) != (wh, ww):
                comp = F.interpolate(comp, size=(wh, ww), mode="bicubic", align_corners=False).clamp(0.0, 1.0)
            if feather > 0:
                wgt = _inward_weight(m, feather)
                fill = _local_fill(x, m, feather + 1)
                comp = comp * wgt + fill * (m - wgt)
            result = comp[0].permute(1, 2, 0).cpu().numpy()
            result = np.clip(np.rint(result * maxval), 0, maxval).astype(rgb.dtype)
            region = out[win.y0:win.y1, win.x0:win.x1]
            region[hole_c] = result[hole_c]
            report(progress, n + 1, total, f"region {n + 1}/{total}", time.monotonic() - started)
    if getattr(image, "gray", False):  # a grey photo stays grey (and its depth): only the fill is changed
        from restorer.engine.imageio import keep_colour_mode

        filled = keep_colour_mode(image, out)
        out[hole_np] = filled[hole_np]
    return out
