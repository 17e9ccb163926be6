"""Training data: folder scanning, in-memory image banks, streamed patch datasets, degradations.

Two ways to feed a trainer:

* `ImageBank` keeps every decoded image in memory (on the training device when it fits) and
  cuts random, flipped and rotated crops there: no decoding per iteration, the GPU never waits.
  Used when the folder fits in `preload_budget` bytes.
* `PatchDataset` + `DataLoader` workers + `CUDAPrefetcher` stream crops from disk for folders
  too large to keep in memory; the prefetcher copies the next batch to the GPU on a side stream
  while the current one trains.

Degradations turn HR crops into LR inputs: `bicubic` (clean antialiased downscaling, the
classic benchmark) or `realistic` (blur, random resize filter, noise, JPEG, once or twice).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from restorer.engine.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


# ----------------------------------------------------------------------------- scanning
@dataclass
class FolderScan:
    folder: Path
    usable: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    total_pixels: int = 0

    def summary(self) -> str:
        text = f"{len(self.usable)} usable image(s) in '{self.folder}'"
        if self.skipped:
            reasons: dict[str, int] = {}
            for _p, why in self.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            text += "; skipped " + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        return text


def scan_folder(folder: str | Path, min_side: int = 64) -> FolderScan:
    """Find usable training images under `folder` (recursive). Never fails on a bad file."""
    root = Path(folder)
    if not root.exists():
        raise InputError(f"training folder '{root}' does not exist")
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder")
    scan = FolderScan(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            if not path.name.startswith("."):
                scan.skipped.append((path, "not an image"))
            continue
        try:
            with Image.open(path) as im:
                w, h = im.size
                im.verify()
        except Exception:  # any decoder failure makes the file unusable, never fatal
            scan.skipped.append((path, "unreadable"))
            continue
        if min(w, h) < min_side:
            scan.skipped.append((path, f"smaller than {min_side} px"))
            continue
        scan.usable.append(path)
        scan.total_pixels += w * h
    return scan


def require_images(scan: FolderScan, minimum: int = 1) -> None:
    if len(scan.usable) < minimum:
        raise InputError(f"not enough training images: {scan.summary()} (need at least {minimum})")


def read_rgb(path: Path) -> Optional[np.ndarray]:
    """Decode an image to RGB uint8 with EXIF orientation applied; None if it cannot be decoded."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except Exception:
        log.warning("skipping unreadable image '%s'", path)
        return None


def split_holdout(paths: Sequence[Path], fraction: float, seed: int = 0, max_items: int = 16) -> tuple[list[Path], list[Path]]:
    """Split paths into (train, validation); at most `max_items` held out, none if too few."""
    paths = list(paths)
    n_val = min(max_items, int(len(paths) * fraction))
    if len(paths) - n_val < 1 or n_val < 1:
        return paths, []
    rng = random.Random(seed)
    val = set(rng.sample(range(len(paths)), n_val))
    return [p for i, p in enumerate(paths) if i not in val], [p for i, p in enumerate(paths) if i in val]


# ----------------------------------------------------------------------------- in-memory bank
class ImageBank:
    """Decoded images (uint8 CHW tensors) on one device; random augmented crops as float batches."""

    def __init__(self, images: list[torch.Tensor], device: torch.device) -> None:
        if not images:
            raise InputError("no usable training images")
        self.device = device
        self.images = [im.to(device) for im in images]

    @classmethod
    def from_paths(cls, paths: Sequence[Path], device: torch.device, min_side: int = 0) -> "ImageBank":
        images = []
        for p in paths:
            arr = read_rgb(p)
            if arr is None or min(arr.shape[:2]) < min_side:
                continue
            images.append(torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).contiguous())
        return cls(images, device)

    def __len__(self) -> int:
        return len(self.images)

    def crops(self, batch: int, size: int, generator: torch.Generator, augment: bool = True) -> torch.Tensor:
        """A (batch, 3, size, size) float tensor in [0,1]: random crops, flips and 90-degree turns."""
        idx = torch.randint(len(self.images), (batch,), generator=generator).tolist()
        out = []
        for i in idx:
            im = self.images[i]
            _, h, w = im.shape
            if h < size or w < size:
                scale = size / min(h, w)
                im = F.interpolate(im[None].float(), size=(max(size, math.ceil(h * scale)), max(size, math.ceil(w * scale))),
                                   mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 255)
                _, h, w = im.shape
            y = int(torch.randint(h - size + 1, (1,), generator=generator))
            x = int(torch.randint(w - size + 1, (1,), generator=generator))
            out.append(im[:, y:y + size, x:x + size])
        batch_t = torch.stack(out).float().div_(255.0)
        if augment:
            flags = torch.randint(2, (3,), generator=generator).tolist()
            # one geometric transform per batch keeps it a cheap tensor op
            if flags[0]:
                batch_t = batch_t.flip(3)
            if flags[1]:
                batch_t = batch_t.flip(2)
            if flags[2]:
                batch_t = batch_t.transpose(2, 3)
        return batch_t.contiguous()


# ----------------------------------------------------------------------------- streamed dataset
class PatchDataset(torch.utils.data.Dataset):
    """Random HR crops decoded from disk each time (for folders too large to keep in memory)."""

    def __init__(self, paths: Sequence[Path], size: int, length: int = 1_000_000) -> None:
        self.paths = list(paths)
        self.size = size
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = random.Random(index * 7919 + torch.initial_seed())
        for _ in range(10):
            arr = read_rgb(self.paths[rng.randrange(len(self.paths))])
            if arr is not None:
                break
        else:
            raise InputError("too many unreadable images in the training folder")
        h, w = arr.shape[:2]
        if min(h, w) < self.size:
            im = Image.fromarray(arr)
            s = self.size / min(h, w)
            im = im.resize((max(self.size, math.ceil(w * s)), max(self.size, math.ceil(h * s))), Image.BICUBIC)
            arr = np.asarray(im)
            h, w = arr.shape[:2]
        y, x = rng.randrange(h - self.size + 1), rng.randrange(w - self.size + 1)
        crop = arr[y:y + self.size, x:x + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        if rng.random() < 0.5:
            crop = crop.transpose(1, 0, 2)
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)


class CUDAPrefetcher:
    """Wraps a DataLoader: the next batch is copied to the GPU on a side stream during this step."""

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device) -> None:
        self.loader = loader
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._iter: Optional[Iterator] = None
        self._next: Optional[torch.Tensor] = None

    def _preload(self) -> None:
        if self._iter is None:
            self._iter = iter(self.loader)
        try:
            batch = next(self._iter)
        except StopIteration:
            self._iter = iter(self.loader)
            batch = next(self._iter)
        if self.stream is None:
            self._next = batch.to(self.device)
            return
        with torch.cuda.stream(self.stream):
            self._next = batch.to(self.device, non_blocking=True)

    def next(self) -> torch.Tensor:
        if self._next is None:
            self._preload()
        if self.stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        batch = self._next
        assert batch is not None
        if self.stream is not None:
            batch.record_stream(torch.cuda.current_stream(self.device))
        self._preload()
        return batch


class LoaderFeed:
    """Streamed HR batches (uint8 from workers -> float [0,1] on the device), optionally prefetched."""

    def __init__(self, paths: Sequence[Path], size: int, batch: int, device: torch.device,
                 workers: int, prefetch: bool = True, seed: int = 0) -> None:
        ds = PatchDataset(paths, size)
        g = torch.Generator()
        g.manual_seed(seed)
        self.loader = torch.utils.data.DataLoader(
            ds, batch_size=batch, shuffle=True, num_workers=workers, generator=g,
            pin_memory=device.type == "cuda", drop_last=True, persistent_workers=workers > 0)
        self.device = device
        self.prefetcher = CUDAPrefetcher(self.loader, device) if prefetch else None
        self._iter: Optional[Iterator] = None

    def next(self) -> torch.Tensor:
        if self.prefetcher is not None:
            batch = self.prefetcher.next()
        else:
            if self._iter is None:
                self._iter = iter(self.loader)
            try:
                batch = next(self._iter)
            except StopIteration:
                self._iter = iter(self.loader)
                batch = next(self._iter)
            batch = batch.to(self.device)
        return batch.float().div_(255.0)


# ----------------------------------------------------------------------------- degradations
def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscaling (matches Pillow's Image.resize(..., BICUBIC) closely)."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp_(0.0, 1.0)


def _gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, device: torch.device) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    c, s = math.cos(theta), math.sin(theta)
    xr, yr = c * xx + s * yy, -s * xx + c * yy
    k = torch.exp(-0.5 * ((xr / sigma_x) ** 2 + (yr / sigma_y) ** 2))
    return k / k.sum()


def _blur(x: torch.Tensor, rng: random.Random, sigma_range: tuple[float, float]) -> torch.Tensor:
    size = rng.choice([7, 9, 11, 13, 15, 17, 19, 21])
    sx = rng.uniform(*sigma_range)
    sy = sx if rng.random() < 0.5 else rng.uniform(*sigma_range)
    k = _gaussian_kernel(size, sx, sy, rng.uniform(0, math.pi), x.device)
    k = k.expand(x.shape[1], 1, size, size)
    return F.conv2d(F.pad(x, [size // 2] * 4, mode="reflect"), k, groups=x.shape[1])


def _resize(x: torch.Tensor, size: tuple[int, int], rng: random.Random) -> torch.Tensor:
    mode = rng.choice(["area", "bilinear", "bicubic"])
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)


def _noise(x: torch.Tensor, rng: random.Random, gauss_range: tuple[float, float], poisson_range: tuple[float, float],
           gen: torch.Generator) -> torch.Tensor:
    gray = rng.random() < 0.4
    if rng.random() < 0.5:
        sigma = rng.uniform(*gauss_range) / 255.0
        shape = (x.shape[0], 1, *x.shape[2:]) if gray else x.shape
        n = torch.randn(shape, generator=gen, device=x.device) * sigma
    else:
        scale = rng.uniform(*poisson_range)
        vals = 10 ** (2 * scale + 1)  # photon counts: lower = noisier
        src = x.mean(1, keepdim=True) if gray else x
        n = torch.poisson(src.clamp(0, 1) * vals, generator=gen) / vals - src.clamp(0, 1)
    return (x + n).clamp_(0.0, 1.0)


def _jpeg(x: torch.Tensor, quality_range: tuple[int, int], rng: random.Random) -> torch.Tensor:
    from torchvision.io import decode_jpeg, encode_jpeg

    device = x.device
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    out = []
    for img in u8:
        q = rng.randint(*quality_range)
        out.append(decode_jpeg(encode_jpeg(img, quality=q)))
    return torch.stack(out).to(device).float().div_(255.0)


@dataclass(frozen=True)
class RealisticDegradation:
    """Real-ESRGAN-style second-order degradation (blur, resize, noise, JPEG; twice with prob p2)."""

    blur_sigma: tuple[float, float] = (0.2, 2.4)
    blur_sigma2: tuple[float, float] = (0.2, 1.2)
    resize_range: tuple[float, float] = (0.3, 1.5)
    gauss_noise: tuple[float, float] = (1.0, 20.0)
    poisson_scale: tuple[float, float] = (0.05, 2.0)
    jpeg_quality: tuple[int, int] = (35, 95)
    second_order_prob: float = 0.5
    blur_prob: float = 0.8

    def __call__(self, hr: torch.Tensor, scale: int, rng: random.Random, gen: torch.Generator) -> torch.Tensor:
        h, w = hr.shape[-2:]
        x = hr
        if rng.random() < self.blur_prob:
            x = _blur(x, rng, self.blur_sigma)
        f = rng.uniform(*self.resize_range)
        x = _resize(x, (max(8, int(h * f)), max(8, int(w * f))), rng).clamp_(0, 1)
        x = _noise(x, rng, self.gauss_noise, self.poisson_scale, gen)
        x = _jpeg(x, self.jpeg_quality, rng)
        if rng.random() < self.second_order_prob:
            if rng.random() < self.blur_prob:
                x = _blur(x, rng, self.blur_sigma2)
            f2 = rng.uniform(0.5, 1.2)
            cur_h, cur_w = x.shape[-2:]
            x = _resize(x, (max(8, int(cur_h * f2)), max(8, int(cur_w * f2))), rng).clamp_(0, 1)
            x = _noise(x, rng, (1.0, 12.0), (0.05, 1.5), gen)
        x = _resize(x, (h // scale, w // scale), rng).clamp_(0, 1)
        x = _jpeg(x, self.jpeg_quality, rng)
        return x


def degrade(hr: torch.Tensor, scale: int, mode: str, rng: random.Random, gen: torch.Generator) -> torch.Tensor:
    if mode == "bicubic":
        return bicubic_down(hr, scale)
    if mode == "realistic":
        return RealisticDegradation()(hr, scale, rng, gen)
    raise InputError(f"unknown degradation '{mode}' (bicubic or realistic)")


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] tensor -> HxWx3 uint8 array."""
    return (t.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
