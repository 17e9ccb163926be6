"""Clean-up without a size change (issue #12): a x1 restoration model run over the photo in tiles.

A clean-up model is an SR-task model of factor 1 (`spec.scale == 1`, e.g. `restore-x1`: noise, JPEG
blocking and mild blur). It runs through the same tiled, row-streaming pipeline as the upscalers
(`upscale.run_tiled`: CPU-sized tiles, bf16 where the CPU has it natively, cancel between tiles),
so a 12 MP photo never needs a full-resolution float array.

`strength` (0..1) blends the cleaned pixels with the input, one tile-row band at a time: 0 gives the
input back unchanged, 1 the model's full output. Upscale's strength slider interpolates two models'
weights instead (`engine.blend`); a clean-up has no second model, so it blends in pixel space.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from restorer.engine import budget
from restorer.engine.blend import check_strength
from restorer.engine.errors import UnknownModelError
from restorer.engine.imageio import ImageData, keep_colour_mode
from restorer.engine.progress import CancelToken, ProgressCallback

__all__ = ["clean_image", "default_clean_model", "clean_models", "blend_with_input"]

_BAND_ROWS = 256  # rows blended at a time (float32 of one band only)


def clean_models() -> list:
    """Installed clean-up models (SR models of factor 1), the shipped default first."""
    from restorer.engine import registry

    specs = [s for s in registry.all_models("sr") if s.scale == 1]
    return sorted(specs, key=lambda s: (not s.provenance.get("default"), s.source != "shipped", s.id))


def default_clean_model():
    """The spec of the clean-up model to use when none is named; UnknownModelError when none is installed."""
    specs = clean_models()
    if not specs:
        raise UnknownModelError("no clean-up model is installed (a x1 model, e.g. restore-x1; "
                                "train one with: restorer train sr --scale 1 --arch compact_sr --unshuffle 2 "
                                "--degradation realistic --data DIR)")
    return specs[0]


def blend_with_input(source: np.ndarray, cleaned: np.ndarray, strength: float) -> np.ndarray:
    """`source + strength * (cleaned - source)`, rounded, in the source's dtype, one band at a time."""
    strength = check_strength(strength)
    if strength >= 1.0:
        return cleaned.astype(source.dtype, copy=False)
    if strength <= 0.0:
        return source.copy()
    maxv = float(np.iinfo(source.dtype).max) if source.dtype.kind in "ui" else 1.0
    out = np.empty_like(source)
    for y in range(0, source.shape[0], _BAND_ROWS):
        a = source[y:y + _BAND_ROWS].astype(np.float32)
        b = cleaned[y:y + _BAND_ROWS].astype(np.float32)
        band = a + strength * (b - a)
        if source.dtype.kind in "ui":
            band = np.clip(np.rint(band), 0, maxv)
        out[y:y + _BAND_ROWS] = band.astype(source.dtype)
    return out


def clean_image(image: ImageData, model: nn.Module, *, strength: float = 1.0,
                device: torch.device = torch.device("cpu"), tile: Optional[int] = None,
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                precision: str = "auto") -> ImageData:
    """The photo cleaned by a x1 model, same size, bit depth, colour mode, alpha and metadata.

    Refused before any work (InputError) when it cannot fit in the free memory. The source
    ImageData is never modified.
    """
    from restorer.engine.pipelines.upscale import run_tiled

    strength = check_strength(strength)
    model_scale = int(getattr(model, "scale", 1))
    if model_scale != 1:
        raise ValueError(f"a clean-up model has factor 1, this one x{model_scale}")
    w, h = image.size
    channels = max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=64)
    budget.check_upscale((w, h), 1, 1, tile=tile, channels=channels, bytes_per_channel=image.rgb.dtype.itemsize,
                         name="this clean-up")
    src = image.rgb  # uint8 or uint16 (ImageData's invariant); the result keeps the dtype
    if strength <= 0.0:
        out = src.copy()
    else:
        out, _tile, _n = run_tiled(src, model, 1, device=device, tile=tile, precision=precision,
                                   progress=progress, cancel=cancel, out_dtype=src.dtype)
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = blend_with_input(src, out, strength)
    out = keep_colour_mode(image, out)
    alpha = None if image.alpha is None else image.alpha.copy()
    return image.with_pixels(out, alpha)
