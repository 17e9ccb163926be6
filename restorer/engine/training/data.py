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
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

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
    """The usable and skipped files of one or several training folders (skips counted per folder)."""

    folder: Path
    usable: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    total_pixels: int = 0
    folders: list[Path] = field(default_factory=list)
    per_folder: list["FolderScan"] = field(default_factory=list)

    def _one_line(self) -> str:
        text = f"{len(self.usable)} usable image(s) in '{self.folder}'"
        if self.skipped:
            reasons: dict[str, int] = {}
            for _p, why in self.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            text += "; skipped " + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        return text

    def summary(self) -> str:
        if len(self.per_folder) <= 1:
            return self._one_line()
        parts = "; ".join(f._one_line() for f in self.per_folder)
        return f"{len(self.usable)} usable image(s) in {len(self.per_folder)} folders ({parts})"


def data_folders(data: "str | Path | Sequence[str | Path]") -> list[Path]:
    """The training folders a config's `data` names: one folder (str or Path) or a list of them."""
    if isinstance(data, (str, Path)):
        items = [data]
    else:
        items = list(data)
    if not items:
        raise InputError("no training folder given")
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p not in out:
            out.append(p)
    return out


def _scan_one(root: Path, min_side: int) -> FolderScan:
    if not root.exists():
        raise InputError(f"training folder '{root}' does not exist")
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder")
    scan = FolderScan(root, folders=[root])
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


def scan_folder(folder: "str | Path | Sequence[str | Path]", min_side: int = 64) -> FolderScan:
    """Find usable training images under one folder or several (recursive). Never fails on a bad
    file; a missing folder is an input error. With several folders the result lists every folder's
    images in turn and keeps one scan per folder in `per_folder` (the summary counts skips per folder)."""
    roots = data_folders(folder)
    scans = [_scan_one(r, min_side) for r in roots]
    if len(scans) == 1:
        scans[0].per_folder = [scans[0]]
        return scans[0]
    merged = FolderScan(roots[0], folders=roots, per_folder=scans)
    seen: set[Path] = set()
    for sc in scans:
        for p in sc.usable:
            rp = p.resolve()
            if rp in seen:  # a folder given twice, or nested in another: each image counts once
                continue
            seen.add(rp)
            merged.usable.append(p)
            with Image.open(p) as im:
                merged.total_pixels += im.size[0] * im.size[1]
        merged.skipped.extend(sc.skipped)
    return merged


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


def centre_crop(arr: np.ndarray, size: int, multiple: int = 1, square: bool = False) -> np.ndarray:
    """The centre of `arr`, each side at most `size` px and cut down to a multiple of `multiple`; `square`:
    both sides the shorter one. A contiguous array."""
    h, w = arr.shape[:2]
    ch, cw = (min(size, h, w),) * 2 if square else (min(size, h), min(size, w))
    ch, cw = ch - ch % multiple, cw - cw % multiple
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(arr[y:y + ch, x:x + cw])


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
    """Decoded images kept as ONE flat uint8 buffer on the training device; a batch of random
    crops with per-sample flips and 90-degree turns is one gather there (no per-image Python work,
    no host sync when the generator lives on the same device).

    Images whose shorter side is below `min_side` are enlarged (bicubic) once at load time, so
    every crop of that side is inside its image.
    """

    def __init__(self, images: list[torch.Tensor], device: torch.device) -> None:
        if not images:
            raise InputError("no usable training images")
        self.device = device
        hwc = [im.permute(1, 2, 0).contiguous().reshape(-1) for im in images]  # CHW uint8 -> flat HWC
        sizes = torch.tensor([t.numel() for t in hwc], dtype=torch.int64)
        self.offsets = (torch.cumsum(sizes, 0) - sizes).to(device)
        self.heights = torch.tensor([im.shape[1] for im in images], dtype=torch.int64, device=device)
        self.widths = torch.tensor([im.shape[2] for im in images], dtype=torch.int64, device=device)
        self.flat = torch.cat(hwc).to(device)
        self.min_side = int(min(min(im.shape[1], im.shape[2]) for im in images))
        self._n = len(images)

    @classmethod
    def from_paths(cls, paths: Sequence[Path], device: torch.device, min_side: int = 0) -> "ImageBank":
        images = []
        for p in paths:
            arr = read_rgb(p)
            if arr is None:
                continue
            t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).contiguous()
            h, w = t.shape[1:]
            if min_side and min(h, w) < min_side:
                s = min_side / min(h, w)
                t = F.interpolate(t[None].float(), size=(max(min_side, math.ceil(h * s)), max(min_side, math.ceil(w * s))),
                                  mode="bicubic", align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            images.append(t)
        return cls(images, device)

    def __len__(self) -> int:
        return self._n

    def image(self, i: int) -> torch.Tensor:
        """Image `i` as a (3, H, W) uint8 tensor on the bank's device."""
        h, w, o = int(self.heights[i]), int(self.widths[i]), int(self.offsets[i])
        return self.flat[o:o + h * w * 3].view(h, w, 3).permute(2, 0, 1)

    @property
    def images(self) -> list[torch.Tensor]:
        return [self.image(i) for i in range(self._n)]

    def crops_uint8(self, batch: int, size: int, generator: torch.Generator, augment: bool = True) -> torch.Tensor:
        """(batch, 3, size, size) uint8 crops at random places of random images (same device as the bank)."""
        dev = self.device
        gdev = generator.device
        idx = torch.randint(self._n, (batch,), generator=generator, device=gdev).to(dev)
        u = torch.rand(batch, 2, generator=generator, device=gdev).to(dev)
        flags = torch.randint(2, (batch, 3), generator=generator, device=gdev).to(dev).bool()
        h, w = self.heights[idx], self.widths[idx]
        y0 = (u[:, 0] * (h - size + 1).clamp(min=1)).long()
        x0 = (u[:, 1] * (w - size + 1).clamp(min=1)).long()
        ar = torch.arange(size, device=dev)
        ii = ar.view(1, size, 1).expand(batch, size, size)
        jj = ar.view(1, 1, size).expand(batch, size, size)
        if augment:
            t = flags[:, 2].view(batch, 1, 1)
            ii, jj = torch.where(t, jj, ii), torch.where(t, ii, jj)
            ii = torch.where(flags[:, 0].view(batch, 1, 1), size - 1 - ii, ii)
            jj = torch.where(flags[:, 1].view(batch, 1, 1), size - 1 - jj, jj)
        rows = (y0.view(batch, 1, 1) + ii).minimum(h.view(batch, 1, 1) - 1)  # clamp: a too small image repeats its edge
        cols = (x0.view(batch, 1, 1) + jj).minimum(w.view(batch, 1, 1) - 1)
        lin = self.offsets[idx].view(batch, 1, 1) + (rows * w.view(batch, 1, 1) + cols) * 3
        lin = lin.unsqueeze(-1) + torch.arange(3, device=dev)
        return self.flat[lin.reshape(-1)].view(batch, size, size, 3).permute(0, 3, 1, 2)

    def crops(self, batch: int, size: int, generator: torch.Generator, augment: bool = True) -> torch.Tensor:
        """A (batch, 3, size, size) float tensor in [0,1]: random crops, flips and 90-degree turns
        (each sample its own)."""
        return self.crops_uint8(batch, size, generator, augment).float().div_(255.0).contiguous()


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


class _Epochs:
    """A DataLoader's batches, epoch after epoch: a new iterator (a new shuffle) when one runs out, made on the
    first `next` (with workers, iter() starts their processes). A loader with no batch at all raises
    StopIteration."""

    def __init__(self, loader: torch.utils.data.DataLoader) -> None:
        self.loader = loader
        self._iter: Optional[Iterator] = None

    def next(self) -> Any:
        if self._iter is None:
            self._iter = iter(self.loader)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self.loader)
            return next(self._iter)


class CUDAPrefetcher:
    """Wraps a DataLoader: the next batch is copied to the GPU on a side stream during this step."""

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device) -> None:
        self.loader = loader
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._batches = _Epochs(loader)
        self._next: Optional[torch.Tensor] = None

    def _preload(self) -> None:
        batch = self._batches.next()
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
        self._batches = _Epochs(self.loader)

    def next(self) -> torch.Tensor:
        if self.prefetcher is not None:
            batch = self.prefetcher.next()
        else:
            batch = self._batches.next().to(self.device)
        return batch.float().div_(255.0)


# ----------------------------------------------------------------------------- degradations
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


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] tensor -> HxWx3 uint8 array."""
    return (t.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


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
