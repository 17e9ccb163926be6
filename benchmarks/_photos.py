"""The photo folders the benchmarks read, listed and loaded in one place.

Two listings, each fixed by the protocols that use it (changing either changes which photos, in which order,
every figure of those benchmarks is measured on):

* ``image_paths``: every image file below the folder (recursive), sorted by path; the suffixes the app opens
  (``restorer.engine.imageio.SUPPORTED_SUFFIXES``). colorize, detect, one-step restore and inpaint benchmarks.
* ``flat_photo_paths``: the .jpg/.jpeg/.png files directly in the folder, sorted by path (TARGETS.md's SR and
  clean-up protocol: an image's place in this order seeds its noise). sr and restore benchmarks.

Photos are loaded as 8-bit RGB after their EXIF orientation (``load_rgb``); ``centre_crop`` keeps the middle
``size`` x ``size`` px (less where the photo is smaller), rounding the offsets down.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np

from restorer.engine.imageio import SUPPORTED_SUFFIXES

FLAT_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def image_paths(folder: Path, limit: Optional[int] = None) -> list[Path]:
    """The image files below `folder`, sorted by path, the first `limit` of them (None or 0: all)."""
    if not folder.is_dir():
        sys.exit(f"no such folder: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    return paths[:limit] if limit else paths


def flat_photo_paths(folder: Path) -> list[Path]:
    """The .jpg/.jpeg/.png files directly in `folder`, sorted by path."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FLAT_SUFFIXES)


def load_rgb(path: Path) -> np.ndarray:
    """The photo as an (H, W, 3) uint8 array (a writable copy), turned as its EXIF orientation says."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()


def centre_crop(arr: np.ndarray, size: int) -> np.ndarray:
    h, w = arr.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(arr[y:y + ch, x:x + cw])


def load_photos(folder: Path, limit: int, size: Optional[int] = None) -> list[tuple[str, np.ndarray]]:
    """(file name, RGB) of the first `limit` images of ``image_paths``, centre-cropped to `size` when given;
    exits with one line when there are none."""
    paths = image_paths(folder, limit)
    if not paths:
        sys.exit(f"no images in {folder}")
    return [(p.name, load_rgb(p) if size is None else centre_crop(load_rgb(p), size)) for p in paths]
