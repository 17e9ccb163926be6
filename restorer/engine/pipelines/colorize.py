"""Colorize a (greyscale) photo with a pix2pix generator, keeping its luminance exactly.

Steps (Progress reported and CancelToken checked between them):

1. the photo -> CIE Lab (sRGB, D65); only L is used, so a colour photo is treated as its grey;
2. L is reduced (area averaging) so its longer side is at most `work_size` px and the generator
   predicts a/b there; colour is low-frequency, so a/b are resized back (bilinear) to full size;
3. a/b are multiplied by `strength` (0 = grey, 1 = the model's colour) and their chroma
   sqrt(a^2 + b^2) is soft-clamped to `max_chroma` (C' = max_chroma * tanh(C / max_chroma)): an
   unsure early model gives muted colour, never garish colour;
4. back to RGB with the *original L*: where (L, a, b) falls outside the sRGB gamut, the chroma
   of that pixel is reduced (bisection on a factor in [0, 1]; factor 0, grey, is always in
   gamut) instead of clipping the channels, which would change the luminance. So the output's
   L equals the input's L up to the final rounding to the photo's bit depth.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorer.engine.errors import InputError
from restorer.engine.progress import CancelToken, ProgressCallback, check, report

WORK_SIZE = 512
MAX_CHROMA = 40.0
AB_SCALE = 110.0

_M_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                           [0.2126729, 0.7151522, 0.0721750],
                           [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_M_XYZ2RGB = torch.linalg.inv(_M_RGB2XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_DELTA = 6.0 / 29.0


def _lin(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def _gamma(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=0) ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) L in [0, 100], a, b (differentiable)."""
    m = _M_RGB2XYZ.to(rgb.device, rgb.dtype)
    white = _WHITE.to(rgb.device, rgb.dtype).view(3, 1, 1)
    xyz = torch.einsum("ij,...jhw->...ihw", m, _lin(rgb)) / white
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp(min=1e-12) ** (1 / 3), xyz / (3 * _DELTA ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_lab`; the result is NOT clipped (out-of-gamut values leave [0, 1])."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], -3)
    xyz = torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4 / 29))
    xyz = xyz * _WHITE.to(lab.device, lab.dtype).view(3, 1, 1)
    return _gamma(torch.einsum("ij,...jhw->...ihw", _M_XYZ2RGB.to(lab.device, lab.dtype), xyz))


def soft_clamp_chroma(ab: torch.Tensor, max_chroma: float) -> torch.Tensor:
    """Scale a/b (..., 2, H, W) so the chroma C becomes max_chroma * tanh(C / max_chroma)."""
    c = ab.square().sum(-3, keepdim=True).sqrt()
    target = max_chroma * torch.tanh(c / max_chroma)
    return ab * torch.where(c > 1e-6, target / c.clamp(min=1e-6), torch.ones_like(c))


def fit_gamut(L: torch.Tensor, ab: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """RGB (3, H, W) for luminance L (1, H, W) and a/b (2, H, W), reducing each pixel's chroma just
    enough to fit the sRGB gamut (bisection), so L is kept exactly."""
    def fits(k: torch.Tensor) -> torch.Tensor:
        rgb = lab_to_rgb(torch.cat([L, ab * k], 0))
        return ((rgb >= -1e-6) & (rgb <= 1 + 1e-6)).all(0, keepdim=True)

    full = fits(torch.ones_like(L))
    lo = torch.zeros_like(L)
    hi = torch.ones_like(L)
    if not bool(full.all()):
        for _ in range(steps):
            mid = (lo + hi) / 2
            ok = fits(mid)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
    k = torch.where(full, torch.ones_like(L), lo)
    return lab_to_rgb(torch.cat([L, ab * k], 0)).clamp(0, 1)


def _rgb_array(image: Any) -> np.ndarray:
    from restorer.engine.imageio import ImageData

    rgb = image.rgb if isinstance(image, ImageData) else np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise InputError(f"expected an (H, W, 3) uint8/uint16 image, got {rgb.shape} {rgb.dtype}")
    return rgb


@torch.inference_mode()
def predict_ab(model: nn.Module, L: torch.Tensor, work_size: int = WORK_SIZE,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """a/b (2, H, W) for luminance L (1, H, W) in [0, 100], predicted at <= work_size px."""
    h, w = L.shape[-2:]
    s = min(1.0, work_size / max(h, w))
    small = L[None].float()
    if s < 1.0:
        small = F.interpolate(small, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    model = model.to(device).eval()
    ab = model((small / 50.0 - 1.0).to(device)).float().cpu() * AB_SCALE
    if ab.shape[-2:] != (h, w):
        ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
    return ab[0].to(L.dtype)


def colorize_image(image: Any, model: nn.Module, *, strength: float = 1.0, max_chroma: float = MAX_CHROMA,
                   work_size: int = WORK_SIZE, device: torch.device | str = "cpu",
                   progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """The colorized RGB array (same shape and dtype as the input); see the module docstring."""
    from restorer.engine.imageio import from_float01, to_float01

    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    if max_chroma <= 0:
        raise InputError(f"max_chroma must be positive, got {max_chroma}")
    rgb = _rgb_array(image)
    total = 4
    report(progress, 0, total, "reading luminance")
    x = torch.from_numpy(to_float01(rgb)).permute(2, 0, 1).double()
    L = rgb_to_lab(x)[:1]
    check(cancel)
    report(progress, 1, total, "predicting colour")
    ab = predict_ab(model, L.float(), work_size, device).double() if strength > 0 else torch.zeros(2, *L.shape[-2:],
                                                                                                    dtype=torch.float64)
    check(cancel)
    report(progress, 2, total, "limiting saturation")
    ab = soft_clamp_chroma(ab * strength, max_chroma)
    check(cancel)
    report(progress, 3, total, "combining with the original luminance")
    out = fit_gamut(L, ab)
    report(progress, total, total, "done")
    return from_float01(out.permute(1, 2, 0).numpy(), rgb.dtype)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk's colourfulness M of an RGB uint8 image (0 = grey; ~50+ = vivid)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
