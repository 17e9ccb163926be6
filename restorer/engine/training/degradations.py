"""Degradations: HR crops -> LR inputs for super-resolution and clean-up training, and the fixed protocol.

`bicubic_down` is clean antialiased downscaling (the classic benchmark); `RealisticDegradation` is
Real-ESRGAN's second-order chain (blur, random resize filter, noise, JPEG, once or twice) with its parameter
ranges explicit (`REALISTIC_STRONG`, `REALISTIC`, `REALISTIC_X1`), batched per sample on the training device;
`degrade` picks one by name. `protocol_realistic_lr` is TARGETS.md's fixed realistic degradation (benchmarks,
gating), `degradation_stats` compares degradations (scripts/degradation_check.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from restorer.engine.errors import InputError

log = logging.getLogger(__name__)


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscaling (matches Pillow's Image.resize(..., BICUBIC) closely)."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class RealisticDegradation:
    """Real-ESRGAN's second-order degradation model (Wang et al., ICCVW 2021), parameter ranges explicit.

    Each stage, per sample unless noted: blur (isotropic or anisotropic Gaussian, random angle;
    skipped with 1 - blur_prob), a random resize (factor and filter per batch: area, bilinear or
    bicubic), noise (Gaussian, colour or grey, or Poisson; sigma / photon scale per sample), JPEG
    (quality per sample). With `second_order_prob` (per batch) the chain runs a second time with
    the `*2` ranges. Then the batch is resized to HR / scale (filter per batch) and JPEG-compressed
    once more, as Real-ESRGAN ends its chain. Blur, resize and noise run on the batch's device in
    one kernel each; JPEG goes through torchvision's encoder (nvjpeg on CUDA where torchvision has
    it, else the CPU; the one stage that syncs with the host).
    Ranges are Real-ESRGAN's (x4 model) except the kernel side (odd, 7-21 px here as there).
    """

    blur_prob: float = 0.8
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    aniso_prob: float = 0.5
    resize_range: tuple[float, float] = (0.15, 1.5)
    resize_modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
    gauss_prob: float = 0.5  # else Poisson
    gauss_sigma: tuple[float, float] = (1.0, 30.0)  # on the 0..255 scale
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)
    second_order_prob: float = 0.5
    blur_prob2: float = 0.8
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gauss_sigma2: tuple[float, float] = (1.0, 25.0)
    poisson_scale2: tuple[float, float] = (0.05, 2.5)
    jpeg_quality2: tuple[int, int] = (30, 95)
    clean_prob: float = 0.0  # per sample: the input is the clean (bicubic) image, so clean photos stay as they are
    final_jpeg_prob: float = 1.0  # per sample: the chain ends in a JPEG (else in 8-bit rounding: PNG/RAW noise)

    def __call__(self, hr: torch.Tensor, scale: int, rng: random.Random, gen: torch.Generator) -> torch.Tensor:
        out = self._chain(hr, scale, rng, gen)
        if self.clean_prob > 0:
            clean = hr.float() if scale == 1 else bicubic_down(hr.float(), scale)
            keep = (_uniform(hr.shape[0], 0, 1, gen, hr.device) < self.clean_prob).view(-1, 1, 1, 1)
            out = torch.where(keep, clean, out)
        return out

    def _chain(self, hr: torch.Tensor, scale: int, rng: random.Random, gen: torch.Generator) -> torch.Tensor:
        h, w = hr.shape[-2:]
        x = hr.float()
        x = blur_batch(x, rng, gen, self.blur_prob, self.kernel_sizes, self.blur_sigma, self.aniso_prob)
        x = _resize(x, _scaled(x, rng.uniform(*self.resize_range)), rng.choice(self.resize_modes))
        x = noise_batch(x, gen, self.gauss_prob, self.gauss_sigma, self.poisson_scale, self.gray_noise_prob)
        x = jpeg_batch(x, gen, self.jpeg_quality)
        if rng.random() < self.second_order_prob:
            x = blur_batch(x, rng, gen, self.blur_prob2, self.kernel_sizes, self.blur_sigma2, self.aniso_prob)
            x = _resize(x, _scaled(x, rng.uniform(*self.resize_range2)), rng.choice(self.resize_modes))
            x = noise_batch(x, gen, self.gauss_prob, self.gauss_sigma2, self.poisson_scale2, self.gray_noise_prob)
        x = _resize(x, (h // scale, w // scale), rng.choice(self.resize_modes))
        out = jpeg_batch(x, gen, self.jpeg_quality2)
        if self.final_jpeg_prob < 1.0:
            skip = (_uniform(x.shape[0], 0, 1, gen, x.device) >= self.final_jpeg_prob).view(-1, 1, 1, 1)
            out = torch.where(skip, (x.clamp(0, 1) * 255).round().div_(255.0), out)
        return out


#: Real-ESRGAN's own ranges (x4), `degrade(..., "realistic-strong")`.
REALISTIC_STRONG = RealisticDegradation()

# The photo models' x2-x8 chain: milder ranges around TARGETS.md's realistic protocol, one sample in ten clean
# (why, and the CPU runs that chose them over Real-ESRGAN's: docs/models.md, "A compact photo model").
REALISTIC = RealisticDegradation(
    blur_prob=0.7, kernel_sizes=(7, 9, 11, 13), blur_sigma=(0.2, 1.5), aniso_prob=0.3,
    resize_range=(0.5, 1.5), gauss_sigma=(1.0, 10.0), poisson_scale=(0.5, 3.0), jpeg_quality=(40, 95),
    second_order_prob=0.2, blur_prob2=0.5, blur_sigma2=(0.2, 1.0), resize_range2=(0.8, 1.1),
    gauss_sigma2=(0.5, 6.0), poisson_scale2=(1.5, 3.0), jpeg_quality2=(40, 95), clean_prob=0.1)

# The x1 clean-up's chain (restore-x1): milder than Real-ESRGAN's x4 ranges, which at x1 ask for super-resolution;
# one sample in ten clean, three in ten without the final JPEG (docs/models.md, "Clean-up x1").
REALISTIC_X1 = RealisticDegradation(
    blur_prob=0.7, kernel_sizes=(7, 9, 11, 13), blur_sigma=(0.2, 1.6), aniso_prob=0.3,
    resize_range=(0.6, 1.2), gauss_sigma=(0.5, 12.0), poisson_scale=(0.7, 3.0), jpeg_quality=(40, 95),
    second_order_prob=0.2, blur_prob2=0.5, blur_sigma2=(0.2, 1.0), resize_range2=(0.8, 1.1),
    gauss_sigma2=(0.5, 8.0), poisson_scale2=(1.5, 3.0), jpeg_quality2=(40, 95), clean_prob=0.1,
    final_jpeg_prob=0.7)


def _scaled(x: torch.Tensor, f: float) -> tuple[int, int]:
    h, w = x.shape[-2:]
    return max(8, int(round(h * f))), max(8, int(round(w * f)))


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=gen.device).to(device)


def gaussian_kernels(size: int, sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(B, size, size) normalised anisotropic Gaussian kernels (one per sample)."""
    dev = sigma_x.device
    ax = torch.arange(size, device=dev, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    c, s = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    xr, yr = c * xx + s * yy, -s * xx + c * yy
    k = torch.exp(-0.5 * ((xr / sigma_x.view(-1, 1, 1)) ** 2 + (yr / sigma_y.view(-1, 1, 1)) ** 2))
    return k / k.sum(dim=(1, 2), keepdim=True)


def blur_batch(x: torch.Tensor, rng: random.Random, gen: torch.Generator, prob: float, sizes: Sequence[int],
               sigma: tuple[float, float], aniso_prob: float) -> torch.Tensor:
    """Per-sample iso/anisotropic Gaussian blur (kernel side per batch), one grouped convolution."""
    B, C, H, W = x.shape
    dev = x.device
    size = rng.choice(list(sizes))
    size = min(size, 2 * ((min(H, W) - 1) // 2) + 1)  # reflect padding needs the kernel inside the image
    if size < 3:
        return x
    sx = _uniform(B, *sigma, gen, dev)
    sy = torch.where(_uniform(B, 0, 1, gen, dev) < aniso_prob, _uniform(B, *sigma, gen, dev), sx)
    theta = _uniform(B, 0.0, math.pi, gen, dev)
    k = gaussian_kernels(size, sx, sy, theta)
    delta = torch.zeros(size, size, device=dev)
    delta[size // 2, size // 2] = 1.0
    k = torch.where((_uniform(B, 0, 1, gen, dev) < prob).view(B, 1, 1), k, delta)  # some samples stay sharp
    k = k.repeat_interleave(C, 0).unsqueeze(1)  # (B*C, 1, k, k)
    y = F.conv2d(F.pad(x.reshape(1, B * C, H, W), [size // 2] * 4, mode="reflect"), k, groups=B * C)
    return y.view(B, C, H, W)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area").clamp_(0, 1)
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True).clamp_(0, 1)


def noise_batch(x: torch.Tensor, gen: torch.Generator, gauss_prob: float, sigma: tuple[float, float],
                poisson_scale: tuple[float, float], gray_prob: float) -> torch.Tensor:
    """Per sample: Gaussian noise (sigma on the 0..255 scale) or Poisson (shot) noise, colour or grey."""
    B, C, H, W = x.shape
    dev = x.device
    x = x.clamp(0, 1)
    gray = (_uniform(B, 0, 1, gen, dev) < gray_prob).view(B, 1, 1, 1)
    use_gauss = (_uniform(B, 0, 1, gen, dev) < gauss_prob).view(B, 1, 1, 1)
    s = _uniform(B, *sigma, gen, dev).view(B, 1, 1, 1) / 255.0
    n_col = torch.randn(x.shape, generator=gen, device=gen.device).to(dev)
    n_gray = n_col[:, :1].expand_as(x)
    gauss = torch.where(gray, n_gray, n_col) * s
    vals = 10 ** (2 * _uniform(B, *poisson_scale, gen, dev).view(B, 1, 1, 1) + 1)  # photon counts: lower = noisier
    src = torch.where(gray, x.mean(1, keepdim=True).expand_as(x), x)
    pois = torch.poisson(src * vals, generator=gen if gen.device == dev else None) / vals - src
    return (x + torch.where(use_gauss, gauss, pois)).clamp_(0.0, 1.0)


_NVJPEG_OK: dict[str, bool] = {}


def jpeg_batch(x: torch.Tensor, gen: torch.Generator, quality: tuple[int, int]) -> torch.Tensor:
    """JPEG round trip with a quality per sample (torchvision; on CUDA through nvjpeg when it works)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    device = x.device
    B = x.shape[0]
    qs = torch.randint(quality[0], quality[1] + 1, (B,), generator=gen, device=gen.device).tolist()
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if device.type == "cuda" and _NVJPEG_OK.get("ok", True):
        try:
            out = [decode_jpeg(encode_jpeg(img, quality=q).cpu(), device=device) for img, q in zip(u8, qs)]
            _NVJPEG_OK["ok"] = True
            return torch.stack(out).float().div_(255.0)
        except Exception as exc:  # torchvision without nvjpeg: do it on the CPU
            log.info("JPEG on the GPU unavailable (%s); using the CPU", exc.__class__.__name__)
            _NVJPEG_OK["ok"] = False
    cpu = u8.cpu()
    out = [decode_jpeg(encode_jpeg(img, quality=q)) for img, q in zip(cpu, qs)]
    return torch.stack(out).to(device).float().div_(255.0)


def degrade(hr: torch.Tensor, scale: int, mode: str, rng: random.Random, gen: torch.Generator,
            clean_prob: Optional[float] = None) -> torch.Tensor:
    """LR inputs for HR crops: `bicubic` (clean, antialiased; at scale 1 the HR itself), `realistic` (`REALISTIC`,
    `REALISTIC_X1` at scale 1: same size) or `realistic-strong` (`REALISTIC_STRONG`, Real-ESRGAN's ranges);
    `clean_prob`, where given, replaces a realistic chain's share of samples left clean (bicubic only)."""
    if mode == "bicubic":
        return hr if scale == 1 else bicubic_down(hr, scale)
    if mode in ("realistic", "realistic-strong"):
        chain = REALISTIC_STRONG if mode == "realistic-strong" else REALISTIC_X1 if scale == 1 else REALISTIC
        if clean_prob is not None:
            if not 0.0 <= clean_prob <= 1.0:
                raise InputError(f"clean_prob must be between 0 and 1, not {clean_prob}")
            chain = dataclasses.replace(chain, clean_prob=float(clean_prob))
        return chain(hr, scale, rng, gen)
    raise InputError(f"unknown degradation '{mode}' (bicubic, realistic or realistic-strong)")


def protocol_realistic_lr(hr: np.ndarray, scale: int, index: int) -> np.ndarray:
    """The fixed realistic degradation of TARGETS.md (benchmarks, gating, statistics checks):
    Pillow GaussianBlur(radius=1), Pillow bicubic downscale by `scale` (none at x1), Gaussian noise
    sigma 4 from numpy default_rng(1000 + index) rounded and clipped, then Pillow JPEG quality 60.
    `hr` is HxWx3 uint8 with sides divisible by `scale`."""
    import io

    from PIL import ImageFilter

    im = Image.fromarray(hr).filter(ImageFilter.GaussianBlur(radius=1.0))
    if scale > 1:
        im = im.resize((im.width // scale, im.height // scale), Image.BICUBIC)
    arr = np.asarray(im).astype(np.float64)
    arr = arr + np.random.default_rng(1000 + index).normal(0.0, 4.0, arr.shape)
    im = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=60)
    buf.seek(0)
    with Image.open(buf) as out:
        return np.asarray(out.convert("RGB")).copy()


def degradation_stats(lr: np.ndarray, hr_down: np.ndarray) -> dict[str, float]:
    """Statistics that compare degradations: noise (std of the residual against a clean bicubic
    downscale), blur (the ratio of high-frequency energy to the clean image's) and blockiness
    (mean step across 8-px block borders relative to inside them)."""
    a = lr.astype(np.float64).mean(2)
    b = hr_down.astype(np.float64).mean(2)
    resid = a - b
    hf = lambda x: float(np.mean(np.abs(np.diff(x, axis=1))) + np.mean(np.abs(np.diff(x, axis=0))))  # noqa: E731
    d = np.abs(np.diff(a, axis=1))
    border = d[:, 7::8].mean() if d.shape[1] > 8 else 0.0
    inner = d[:, [i for i in range(d.shape[1]) if i % 8 != 7]].mean() if d.shape[1] > 8 else 1.0
    return {"noise_std": float(resid.std()), "sharpness_ratio": hf(a) / max(hf(b), 1e-6),
            "blockiness": float(border / max(inner, 1e-6))}
