"""Find scratches, dust and stains in a photo: ImageData (or an RGB array) in, bool mask out.

Steps, each reported through Progress and separated by CancelToken checks:

1. the photo goes to float [0, 1] (uint8 or uint16); if it has more than `max_pixels` pixels
   it is reduced (area averaging) to fit, since damage on a large scan is several pixels wide
   and the network's cost grows with the pixel count;
2. the network runs on tiles of `tile` px that overlap by `overlap` px on every side (only each
   tile's centre is kept, so the seams are invisible), giving a damage probability per pixel;
3. the probability map is resized back to the photo's size (bilinear) and thresholded:
   a pixel is damage when its probability is at least `threshold` (default: the model's own
   threshold, chosen on held-out synthetic data when it was trained and stored in its file as
   meta "threshold"; 0.5 for a model without one). With a lower `low_threshold` (default: the
   model's own, meta "low_threshold"; none for a model without one) the threshold is a
   *hysteresis*: pixels of at least `threshold` are seeds, and every pixel of at least
   `low_threshold` 8-connected to a seed through such pixels is damage too. A scratch whose
   probability sags along its length (faint or low-contrast stretches) stays one mark, while a
   weak isolated blob with no confident pixel is dropped;
4. optionally the mask grows by `grow` px (a square dilation), which helps a fill cover the
   soft edges of a scratch.

The result is an ordinary (H, W) bool mask; the caller decides what to do with it (the app
makes it an editable mask layer, the CLI writes it as a black/white PNG).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorer.engine.errors import InputError
from restorer.engine.progress import CancelToken, ProgressCallback, check, report
from restorer.engine.regions import keep_connected

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
MAX_PIXELS = 4_000_000  # larger photos are reduced to this before detection
TILE = 1024
OVERLAP = 32


@dataclass(frozen=True)
class DetectResult:
    mask: np.ndarray  # (H, W) bool, the photo's size
    probability: np.ndarray  # (H, W) float32 in [0, 1]
    threshold: float
    work_scale: float  # 1.0, or the factor the photo was reduced by
    low_threshold: Optional[float] = None  # the hysteresis' lower threshold; None: a plain threshold

    @property
    def fraction(self) -> float:
        return float(self.mask.mean())


def _as_float_rgb(image: Any) -> np.ndarray:
    from restorer.engine.imageio import ImageData, to_float01

    rgb = image.rgb if isinstance(image, ImageData) else np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected an RGB image, got an array of shape {rgb.shape}")
    if rgb.dtype not in (np.uint8, np.uint16):
        raise InputError(f"expected uint8 or uint16 pixels, got {rgb.dtype}")
    return to_float01(rgb)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` px covering `length` with at least 2*overlap shared px."""
    if length <= tile:
        return [0]
    step = tile - 2 * overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


@torch.inference_mode()
def damage_probability(rgb01: np.ndarray, model: nn.Module, *, device: torch.device | str = "cpu",
                       tile: int = TILE, overlap: int = OVERLAP, progress: Optional[ProgressCallback] = None,
                       cancel: Optional[CancelToken] = None, done: int = 0, total: Optional[int] = None) -> np.ndarray:
    """Per-pixel damage probability (H, W) float32 of a float RGB image, computed tile by tile."""
    if tile <= 2 * overlap + 16:
        raise InputError(f"the tile side must exceed twice the overlap plus 16, got {tile} / {overlap}")
    dev = torch.device(device)
    h, w = rgb01.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb01)).permute(2, 0, 1)[None]
    out = np.zeros((h, w), np.float32)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    total = total if total is not None else len(ys) * len(xs)
    model = model.eval()
    if hasattr(model, "fused"):  # DamageUNet: BatchNorm folded into the convolutions (same output, faster)
        model = model.fused()
    model = model.to(dev)
    step = done
    for y0 in ys:
        for x0 in xs:
            check(cancel)
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            prob = torch.sigmoid(model(x[..., y0:y1, x0:x1].to(dev)).float())[0, 0].cpu().numpy()
            # keep the centre: drop `overlap` px on sides that have a neighbouring tile
            ky0 = 0 if y0 == 0 else overlap
            kx0 = 0 if x0 == 0 else overlap
            ky1 = (y1 - y0) if y1 == h else (y1 - y0) - overlap
            kx1 = (x1 - x0) if x1 == w else (x1 - x0) - overlap
            out[y0 + ky0:y0 + ky1, x0 + kx0:x0 + kx1] = prob[ky0:ky1, kx0:kx1]
            step += 1
            report(progress, step, total, "finding damage")
    return out


def model_threshold(model: nn.Module) -> float:
    """The threshold a detect model was calibrated for (its file's meta "threshold"), else 0.5."""
    value = getattr(model, "damage_threshold", None)
    return float(value) if isinstance(value, (int, float)) and 0.0 < value < 1.0 else DEFAULT_THRESHOLD


def model_low_threshold(model: nn.Module) -> Optional[float]:
    """The hysteresis' lower threshold a detect model was calibrated with (meta "low_threshold"), else None."""
    value = getattr(model, "damage_low_threshold", None)
    return float(value) if isinstance(value, (int, float)) and 0.0 < value < 1.0 else None


def threshold_mask(probability: np.ndarray, threshold: float, low_threshold: Optional[float] = None) -> np.ndarray:
    """Pixels of at least `threshold`, and (with a lower `low_threshold`) every pixel of at least
    `low_threshold` 8-connected to one of them through such pixels (hysteresis)."""
    seeds = probability >= threshold
    if low_threshold is None or low_threshold >= threshold:
        return seeds
    return keep_connected(probability >= low_threshold, seeds)


def detect_damage(image: Any, model: nn.Module, *, threshold: Optional[float] = None,
                  low_threshold: Optional[float] = None, device: torch.device | str = "cpu", max_pixels: int = MAX_PIXELS, tile: int = TILE,
                  overlap: int = OVERLAP, grow: int = 0, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> DetectResult:
    """The damage mask of a photo (ImageData or (H, W, 3) uint8/uint16 array); see the module docstring."""
    if threshold is None:
        threshold = model_threshold(model)
    if not 0.0 < threshold < 1.0:
        raise InputError(f"the threshold must be between 0 and 1 (exclusive), got {threshold}")
    if low_threshold is None:
        low_threshold = model_low_threshold(model)
    elif not 0.0 < low_threshold < 1.0:
        raise InputError(f"the low threshold must be between 0 and 1 (exclusive), got {low_threshold}")
    if low_threshold is not None and low_threshold >= threshold:
        low_threshold = None  # a seed threshold at or below the model's low one: a plain threshold
    if grow < 0:
        raise InputError(f"grow must be 0 or more pixels, got {grow}")
    rgb = _as_float_rgb(image)
    h, w = rgb.shape[:2]
    check(cancel)
    scale = 1.0
    work = rgb
    if h * w > max_pixels:
        scale = float(np.sqrt(max_pixels / (h * w)))
        wh, ww = max(1, int(h * scale)), max(1, int(w * scale))
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        work = F.interpolate(t, size=(wh, ww), mode="area")[0].permute(1, 2, 0).numpy()
        log.info("detecting at %dx%d (reduced from %dx%d)", ww, wh, w, h)
    wh, ww = work.shape[:2]
    n_tiles = len(tile_starts(wh, tile, overlap)) * len(tile_starts(ww, tile, overlap))
    total = n_tiles + 2
    report(progress, 1, total, "preparing")
    prob = damage_probability(work, model, device=device, tile=tile, overlap=overlap, progress=progress,
                              cancel=cancel, done=1, total=total)
    check(cancel)
    if (wh, ww) != (h, w):
        t = torch.from_numpy(prob)[None, None]
        prob = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
    mask = threshold_mask(prob, threshold, low_threshold)
    if grow > 0:
        t = torch.from_numpy(mask)[None, None].float()
        mask = F.max_pool2d(t, 2 * grow + 1, stride=1, padding=grow)[0, 0].numpy() > 0
    report(progress, total, total, "done")
    return DetectResult(mask=mask, probability=prob.astype(np.float32, copy=False), threshold=threshold,
                        work_scale=scale, low_threshold=low_threshold)


def load_detector(model_id: Optional[str] = None) -> tuple[Any, nn.Module]:
    """(spec, eval-mode network) of a detect model: `model_id`, or the default installed one."""
    from restorer.engine import registry

    spec = registry.get_spec(model_id, task="detect") if model_id else registry.default_model("detect")
    return spec, registry.load_model(spec)
