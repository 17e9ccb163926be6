"""Colorize a (greyscale) photo with a pix2pix generator, keeping its luminance exactly.

Steps (Progress reported and CancelToken checked between them):

1. the photo -> CIE Lab (sRGB, D65); only L is used, so a colour photo is treated as its grey;
2. L is reduced (area averaging) so its longer side is at most `work_size` px and the generator
   predicts a/b there once for the whole photo (:class:`ColourPrediction`); colour is low-frequency,
   so a/b are resized back (bilinear) to full size, strip by strip of rows (steps 3 and 4 run per
   strip: memory stays small; a preview of a crop, :func:`colorize_region`, gives exactly what the
   whole photo gets there);
3. a/b are multiplied by `strength` (0 = grey, 1 = the model's colour) and their chroma
   sqrt(a^2 + b^2) is soft-clamped to `max_chroma` (C' = max_chroma * tanh(C / max_chroma)): an
   unsure early model gives muted colour, never garish colour;
4. back to RGB with the *original L*: where (L, a, b) falls outside the sRGB gamut, the chroma
   of that pixel is reduced (bisection on a factor in [0, 1]; factor 0, grey, is always in
   gamut) instead of clipping the channels, which would change the luminance. So the output's
   L equals the input's L up to the final rounding to the photo's bit depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorer.engine import vocab
from restorer.engine.errors import InputError
from restorer.engine.progress import CancelToken, ProgressCallback, check, report

WORK_SIZE = 512
DEFAULT_STRENGTH = vocab.COLORIZE_STRENGTH  # where the app's slider, the CLI and the restore start
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


def _in_gamut(rgb: torch.Tensor) -> torch.Tensor:
    return ((rgb >= -1e-6) & (rgb <= 1 + 1e-6)).all(0)


def fit_gamut(L: torch.Tensor, ab: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """RGB (3, H, W) for luminance L (1, H, W) and a/b (2, H, W), reducing each pixel's chroma just
    enough to fit the sRGB gamut (bisection), so L is kept exactly. Only the pixels outside the gamut
    are bisected (muted colour leaves most pixels inside: the slider's preview stays quick)."""
    rgb = lab_to_rgb(torch.cat([L, ab], 0))
    bad = ~_in_gamut(rgb)
    if bool(bad.any()):
        Lb = L[:, bad].unsqueeze(-1)  # (1, N, 1): the pixels outside, as a column
        abb = ab[:, bad].unsqueeze(-1)
        lo = torch.zeros_like(Lb)
        hi = torch.ones_like(Lb)
        for _ in range(steps):
            mid = (lo + hi) / 2
            ok = _in_gamut(lab_to_rgb(torch.cat([Lb, abb * mid], 0))).unsqueeze(0)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        rgb[:, bad] = lab_to_rgb(torch.cat([Lb, abb * lo], 0))[..., 0]
    return rgb.clamp(0, 1)


def _rgb_array(image: Any) -> np.ndarray:
    from restorer.engine.imageio import ImageData

    rgb = image.rgb if isinstance(image, ImageData) else np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise InputError(f"expected an (H, W, 3) uint8/uint16 image, got {rgb.shape} {rgb.dtype}")
    return rgb


STRIP_PIXELS = 1_000_000  # the combine runs in strips of rows of about this many pixels (memory, progress, cancel)


def luminance(rgb: np.ndarray, strip_pixels: int = STRIP_PIXELS) -> torch.Tensor:
    """CIE L (1, H, W) float64 of an (H, W, 3) uint8/uint16 photo, converted in strips of rows (a
    full-size float64 Lab copy of a large photo would cost ~50 bytes a pixel)."""
    from restorer.engine.imageio import to_float01

    h, w = rgb.shape[:2]
    rows = max(1, strip_pixels // max(1, w))
    out = torch.empty(1, h, w, dtype=torch.float64)
    for y in range(0, h, rows):
        x = torch.from_numpy(to_float01(np.ascontiguousarray(rgb[y:y + rows]))).permute(2, 0, 1).double()
        out[:, y:y + rows] = rgb_to_lab(x)[:1]
    return out


@dataclass(frozen=True)
class ColourPrediction:
    """The model's a/b for a photo of `size` (w, h), kept at the size it was predicted at (<= work_size):
    colour is low-frequency, so :meth:`region` resizes it up (bilinear) for any part of the photo. The
    preview of a crop and the whole photo's result take their colour from the same prediction, so a
    crop shows what Apply gives (the model saw the whole photo, not the crop)."""

    ab: torch.Tensor  # (2, h, w) float64, a/b units
    size: tuple[int, int]

    def region(self, box: tuple[int, int, int, int]) -> torch.Tensor:
        """a/b (2, y1 - y0, x1 - x0) float64 of the full-size photo's box (x0, y0, x1, y1), exactly as
        resizing the whole prediction to the photo's size (bilinear, half-pixel centres, as
        torch.nn.functional.interpolate with align_corners=False) and cropping would give."""
        x0, y0, x1, y1 = box
        w, h = self.size
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise InputError(f"box {box} is outside the {w}x{h} photo")
        iy0, iy1, wy = _bilinear_axis(h, self.ab.shape[-2], y0, y1)
        ix0, ix1, wx = _bilinear_axis(w, self.ab.shape[-1], x0, x1)
        wy_t = torch.from_numpy(wy).view(1, -1, 1)
        wx_t = torch.from_numpy(wx).view(1, 1, -1)
        rows = self.ab[:, iy0] * (1 - wy_t) + self.ab[:, iy1] * wy_t
        return rows[:, :, ix0] * (1 - wx_t) + rows[:, :, ix1] * wx_t


def _bilinear_axis(n_out: int, n_in: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (lower, upper) and weights of output positions start..stop-1 when n_in samples are
    resized to n_out (half-pixel centres; clamped at the borders)."""
    src = (np.arange(start, stop, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


@torch.inference_mode()
def predict_colour(image: Any, model: nn.Module, *, work_size: int = WORK_SIZE,
                   device: torch.device | str = "cpu", L: Optional[torch.Tensor] = None) -> ColourPrediction:
    """The model's a/b for the whole photo, predicted on its luminance reduced (area averaging) so the
    longer side is at most `work_size` px. `L` (1, H, W): the photo's luminance when already known."""
    rgb = _rgb_array(image)
    h, w = rgb.shape[:2]
    if L is None:
        L = luminance(rgb)
    s = min(1.0, work_size / max(h, w))
    small = L[None].float()
    if s < 1.0:
        small = F.interpolate(small, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    model = model.to(device).eval()
    ab = model((small / 50.0 - 1.0).to(device)).float().cpu() * AB_SCALE
    return ColourPrediction(ab[0].double(), (w, h))


def combine(L: torch.Tensor, ab: torch.Tensor, strength: float, max_chroma: float = MAX_CHROMA) -> torch.Tensor:
    """RGB (3, H, W) float64 in [0, 1] of luminance L (1, H, W) with the model's a/b (2, H, W) at
    `strength`: a/b scaled, chroma soft-clamped, then fitted to the gamut with L kept (steps 3 and 4)."""
    return fit_gamut(L, soft_clamp_chroma(ab * float(strength), max_chroma))


def colorize_region(rgb: np.ndarray, prediction: Optional[ColourPrediction], box: tuple[int, int, int, int], *,
                    strength: float, max_chroma: float = MAX_CHROMA) -> np.ndarray:
    """The colorized pixels of `box` (x0, y0, x1, y1) of the photo `rgb` (H, W, 3): what
    :func:`colorize_image` gives there with this prediction (a preview of a crop; the strips of the
    whole photo). `prediction` None (strength 0): the photo's grey."""
    from restorer.engine.imageio import from_float01

    x0, y0, x1, y1 = box
    part = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    L = luminance(part)
    if prediction is None or strength <= 0:
        ab = torch.zeros(2, *L.shape[-2:], dtype=torch.float64)
    else:
        ab = prediction.region(box)
    out = combine(L, ab, strength, max_chroma)
    return from_float01(out.permute(1, 2, 0).numpy(), rgb.dtype)


def colorize_image(image: Any, model: nn.Module, *, strength: float = 1.0, max_chroma: float = MAX_CHROMA,
                   work_size: int = WORK_SIZE, device: torch.device | str = "cpu",
                   progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                   prediction: Optional[ColourPrediction] = None) -> np.ndarray:
    """The colorized RGB array (same shape and dtype as the input); see the module docstring.

    The colour is predicted once for the whole photo (or `prediction` is used), then combined with the
    original luminance in strips of rows (Progress and CancelToken between strips)."""
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    if max_chroma <= 0:
        raise InputError(f"max_chroma must be positive, got {max_chroma}")
    rgb = _rgb_array(image)
    h, w = rgb.shape[:2]
    rows = max(1, STRIP_PIXELS // max(1, w))
    strips = list(range(0, h, rows))
    total = 1 + len(strips)
    if strength > 0 and prediction is None:
        report(progress, 0, total, "predicting colour")
        prediction = predict_colour(rgb, model, work_size=work_size, device=device)
    if prediction is not None and prediction.size != (w, h):
        raise InputError(f"the colour was predicted for a {prediction.size[0]}x{prediction.size[1]} photo, "
                         f"not this {w}x{h} one")
    check(cancel)
    out = np.empty_like(rgb)
    for i, y in enumerate(strips):
        report(progress, 1 + i, total, "combining with the original luminance")
        y1 = min(h, y + rows)
        out[y:y1] = colorize_region(rgb, prediction, (0, y, w, y1), strength=strength, max_chroma=max_chroma)
        check(cancel)
    report(progress, total, total, "done")
    return out


def colorize_photo(image: Any, model: nn.Module, **kwargs: Any) -> Any:
    """:func:`colorize_image` of an ImageData, as an ImageData: alpha and metadata kept, marked as colour;
    a grey photo's ICC profile (a GRAY profile cannot describe the colour result) is dropped."""
    from dataclasses import replace

    rgb = colorize_image(image, model, **kwargs)
    alpha = None if image.alpha is None else image.alpha.copy()
    return replace(image, rgb=rgb, alpha=alpha, gray=False, icc_profile=None if image.gray else image.icc_profile)


def colorize_models() -> list:
    """Installed colorize models, the shipped default first."""
    from restorer.engine import registry

    specs = registry.all_models("colorize")
    return sorted(specs, key=lambda s: (not s.provenance.get("default"), s.source != "shipped", s.id))


def colorize_spec(model_id: Optional[str] = None) -> Any:
    """The named colorize model, or the default one; UnknownModelError (exit 2) when none is installed."""
    from restorer.engine import registry
    from restorer.engine.errors import UnknownModelError

    if model_id:
        return registry.get_spec(model_id, task="colorize")
    specs = colorize_models()
    if not specs:
        raise UnknownModelError("no colorize model is installed (such as colorize-photos; train one with: "
                                "restorer train colorize --data DIR --name NAME)")
    return specs[0]


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk's colourfulness M of an RGB uint8 image (0 = grey; ~50+ = vivid)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
