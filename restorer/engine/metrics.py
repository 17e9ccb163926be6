"""Image quality metrics of the benchmark protocol (BT.601 luma PSNR and Gaussian SSIM)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in 16..235 from RGB uint8 (or float in 0..255)."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def crop_border(a: np.ndarray, n: int) -> np.ndarray:
    return a[n:-n, n:-n] if n > 0 else a


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM with an 11x11 Gaussian window (sigma 1.5), population covariance, valid region only.

    Same definition as skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False). 2-D (gray) or HxWxC (mean over channels) input.
    """
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))
    x = torch.from_numpy(a.astype(np.float64))[None, None]
    y = torch.from_numpy(b.astype(np.float64))[None, None]
    ax = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(ax**2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :])[None, None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mx * mx
    syy = F.conv2d(y * y, win) - my * my
    sxy = F.conv2d(x * y, win) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    # skimage crops (win_size-1)//2 from each side of the full-size map; 'valid' conv equals that
    return float(s.mean())


def sr_scores(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """(PSNR, SSIM) on the Y channel after cropping `scale` pixels from every border."""
    ys, yh = crop_border(rgb_to_y(sr), scale), crop_border(rgb_to_y(hr), scale)
    return psnr(ys, yh), ssim(ys, yh)
