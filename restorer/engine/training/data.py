"""Training data: folder scanning, in-memory image banks, streamed patch datasets.

Two ways to feed a trainer:

* `ImageBank` keeps every decoded image in memory (on the training device when it fits) and
  cuts random, flipped and rotated crops there: no decoding per iteration, the GPU never waits.
  Used when the folder fits in `preload_budget` bytes.
* `PatchDataset` + `DataLoader` workers + `CUDAPrefetcher` stream crops from disk for folders
  too large to keep in memory; the prefetcher copies the next batch to the GPU on a side stream
  while the current one trains.

The degradations that turn HR crops into LR inputs are in `degradations.py`.
"""

from __future__ import annotations

import logging
import math
import random
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


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3,H,W) float [0,1] tensor -> HxWx3 uint8 array."""
    return (t.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
