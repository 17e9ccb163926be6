"""Output size by target width or height (Upscayl's custom width), keeping the aspect ratio.

The upscale runs with the smallest factor at or above the one needed (`factor_for_size`; the
pipeline itself handles factors the model lacks), then `resize_to` brings the result to the exact
size with a Lanczos filter, per channel in float32 so 16-bit and grey photos keep their depth and
mode.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from restorer.engine.errors import InputError
from restorer.engine.imageio import ImageData, resize_plane

FACTORS = (2, 3, 4, 8)


def target_size(size: tuple[int, int], width: Optional[int] = None, height: Optional[int] = None) -> tuple[int, int]:
    """(w, h) of `size` (w, h) scaled to `width` or `height` (exactly one), aspect ratio kept."""
    w, h = (int(v) for v in size)
    if (width is None) == (height is None):
        raise InputError("give either a target width or a target height")
    if width is not None:
        if int(width) < 1:
            raise InputError(f"the target width must be positive, got {width}")
        return int(width), max(1, round(h * int(width) / w))
    if int(height) < 1:  # type: ignore[arg-type]
        raise InputError(f"the target height must be positive, got {height}")
    return max(1, round(w * int(height) / h)), int(height)  # type: ignore[arg-type]


def factor_for_size(size: tuple[int, int], target: tuple[int, int], factors: Sequence[int] = FACTORS) -> int:
    """The smallest factor in `factors` whose result is at least `target` in both directions."""
    w, h = (int(v) for v in size)
    need = max(target[0] / w, target[1] / h)
    for f in sorted(factors):
        if f + 1e-9 >= need:
            return int(f)
    raise InputError(f"{target[0]} x {target[1]} px is more than x{max(factors)} of {w} x {h} px "
                     f"(x{math.ceil(need * 10) / 10:g} needed)")


def resize_to(image: ImageData, size: tuple[int, int]) -> ImageData:
    """`image` resized to exactly `size` (w, h) with Lanczos; same bit depth, alpha and colour mode."""
    size = (int(size[0]), int(size[1]))
    if image.size == size:
        return image
    src = image.rgb
    if image.gray:  # three equal channels: resize one, keep them equal
        plane = resize_plane(np.ascontiguousarray(src[..., 0]), size)
        rgb = np.repeat(plane[:, :, None], 3, axis=2)
    else:
        rgb = np.stack([resize_plane(np.ascontiguousarray(src[..., c]), size) for c in range(3)], axis=-1)
    alpha = resize_plane(image.alpha, size) if image.alpha is not None else None
    return image.with_pixels(np.ascontiguousarray(rgb), alpha)
