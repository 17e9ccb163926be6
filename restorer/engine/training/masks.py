"""Free-form hole masks for inpainting training and the inpainting benchmark.

Masks are boolean (H, W) arrays, True = hole. Strokes are random walks of line segments with
round joints and ends (like scratches, cracks and brush marks), drawn with Pillow; some kinds add
rectangles (missing corners, tape, labels). Three families, as in DeepFill v2 / LaMa's
"thin / medium / thick" masks:

=========  ===========  ===============  =========
kind       strokes      widths up to     boxes
=========  ===========  ===============  =========
thin       4-20         10 px            0
medium     3-5          30 px            0-2
thick      1-3          60 px            0-1
=========  ===========  ===============  =========

Widths (and stroke lengths, box sizes) are for a 321 px image and scale with
``min(h, w) / 321``. Every draw goes through the given `numpy.random.Generator`, so a seed gives
the same mask on every platform.

Training also uses object-shaped holes (what people remove: a person, a post, a sign), which the
benchmark protocol does not draw: ``blob`` (1-2 smooth random blobs, star-shaped polygons of
random radial profile) and ``box`` (1-2 axis-aligned rectangles). ``all`` picks thin, medium,
thick, blob or box per mask (weights in `TRAIN_KIND_WEIGHTS`). The benchmark's masks
(`benchmark_mask`, kinds thin/medium/thick) are unchanged.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("thin", "medium", "thick")
OBJECT_KINDS = ("blob", "box")
TRAIN_KINDS = KINDS + OBJECT_KINDS + ("mixed", "all")
TRAIN_KIND_WEIGHTS = {"thin": 0.2, "medium": 0.2, "thick": 0.2, "blob": 0.25, "box": 0.15}
REFERENCE_SIDE = 321.0

# kind -> (min strokes, max strokes, max width at 321 px, max boxes)
_SPECS: dict[str, tuple[int, int, float, int]] = {
    "thin": (4, 20, 10.0, 0),
    "medium": (3, 5, 30.0, 2),
    "thick": (1, 3, 60.0, 1),
}


def max_width(kind: str, h: int, w: int) -> float:
    """The largest stroke width (px) a mask of `kind` may use at this image size."""
    return _SPECS[kind][2] * min(h, w) / REFERENCE_SIDE


def _draw_stroke(draw: ImageDraw.ImageDraw, h: int, w: int, rng: np.random.Generator, width_max: float,
                 scale: float) -> None:
    """One random walk of 2-8 segments with round joints, drawn with value 255."""
    width = max(1, int(round(rng.uniform(max(1.0, width_max * 0.4), max(1.0, width_max)))))
    n_vertex = int(rng.integers(2, 9))
    y, x = float(rng.uniform(0, h)), float(rng.uniform(0, w))
    angle = float(rng.uniform(0, 2 * math.pi))
    max_len = max(8.0, 60.0 * scale)
    points = [(x, y)]
    for _ in range(n_vertex):
        angle += float(rng.uniform(-math.pi / 3, math.pi / 3))
        if rng.random() < 0.15:  # an occasional sharp turn
            angle += math.pi / 2 * (1 if rng.random() < 0.5 else -1)
        length = float(rng.uniform(max_len * 0.3, max_len))
        x = min(max(x + length * math.cos(angle), 0.0), w - 1.0)
        y = min(max(y + length * math.sin(angle), 0.0), h - 1.0)
        points.append((x, y))
    draw.line(points, fill=255, width=width, joint="curve")
    r = width / 2.0
    for px, py in points:  # round joints and ends
        draw.ellipse((px - r, py - r, px + r, py + r), fill=255)


def _draw_box(draw: ImageDraw.ImageDraw, h: int, w: int, rng: np.random.Generator) -> None:
    side = min(h, w)
    bh = float(rng.uniform(0.08, 0.3)) * side
    bw = float(rng.uniform(0.08, 0.3)) * side
    y0 = float(rng.uniform(0, max(1.0, h - bh)))
    x0 = float(rng.uniform(0, max(1.0, w - bw)))
    draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=255)


def _fallback_box(h: int, w: int, rng: np.random.Generator, area: float) -> np.ndarray:
    """A rectangle covering about `area` of the image (used only if strokes keep missing the bounds)."""
    bh = max(1, min(h, int(round(math.sqrt(area) * h))))
    bw = max(1, min(w, int(round(area * h * w / bh))))
    y0 = int(rng.integers(0, h - bh + 1))
    x0 = int(rng.integers(0, w - bw + 1))
    m = np.zeros((h, w), dtype=bool)
    m[y0:y0 + bh, x0:x0 + bw] = True
    return m


def random_mask(h: int, w: int, rng: np.random.Generator, kind: str = "mixed", min_area: float = 0.05,
                max_area: float = 0.5) -> np.ndarray:
    """A free-form hole mask (bool (H, W), True = hole) covering between min_area and max_area.

    `kind` is "thin", "medium", "thick" or "mixed" (one of the three at random). Strokes are
    added one at a time: one that would push the hole past `max_area` is dropped and redrawn,
    and strokes keep coming (past the kind's usual count) until `min_area` is reached.
    """
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got {h}x{w}")
    if not 0.0 <= min_area <= max_area <= 1.0:
        raise ValueError(f"need 0 <= min_area <= max_area <= 1, got {min_area}, {max_area}")
    if kind == "all":
        names = list(TRAIN_KIND_WEIGHTS)
        weights = np.array([TRAIN_KIND_WEIGHTS[k] for k in names])
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if kind in OBJECT_KINDS:
        return object_mask(h, w, rng, kind, min_area, max_area)
    if kind == "mixed":
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
    if kind not in _SPECS:
        raise ValueError(f"unknown mask kind '{kind}' (thin, medium, thick, blob, box, mixed or all)")
    lo, hi, _wmax, max_boxes = _SPECS[kind]
    scale = min(h, w) / REFERENCE_SIDE
    width_max = max_width(kind, h, w)
    total = float(h * w)
    min_px, max_px = min_area * total, max_area * total

    canvas = Image.new("L", (w, h), 0)
    area = 0
    n_strokes = int(rng.integers(lo, hi + 1))
    n_boxes = int(rng.integers(0, max_boxes + 1)) if max_boxes else 0
    plan = ["stroke"] * n_strokes + ["box"] * n_boxes
    attempts = 0
    budget = 4 * (n_strokes + n_boxes) + 200
    i = 0
    while attempts < budget:
        if i < len(plan):
            what = plan[i]
        elif area >= min_px:
            break
        else:
            what = "stroke"
        attempts += 1
        trial = canvas.copy()
        draw = ImageDraw.Draw(trial)
        if what == "stroke":
            _draw_stroke(draw, h, w, rng, width_max, scale)
        else:
            _draw_box(draw, h, w, rng)
        new_area = int(np.count_nonzero(np.asarray(trial)))
        if new_area > max_px:
            if attempts > budget // 2:
                i += 1  # give up on this planned element
            continue
        canvas, area = trial, new_area
        i += 1
    mask = np.asarray(canvas) > 0
    if not (min_px <= mask.sum() <= max_px):
        mask = _fallback_box(h, w, rng, (min_area + max_area) / 2)
    return mask


def _blob(h: int, w: int, rng: np.random.Generator, area_px: float) -> np.ndarray:
    """One smooth star-shaped blob of about `area_px` pixels at a random place (bool (H, W))."""
    n = 64
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    profile = np.ones(n)
    for k in range(1, 5):  # a few low harmonics give person/bush/rock-like outlines
        profile += rng.uniform(0, 0.35 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    profile = np.clip(profile, 0.3, None)
    stretch = rng.uniform(0.5, 2.0)  # tall or wide
    base_area = 0.5 * np.sum(profile**2) * (2 * np.pi / n) * stretch
    r = math.sqrt(area_px / max(base_area, 1e-6))
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    pts = [(float(cx + r * p * math.cos(a)), float(cy + r * p * math.sin(a) * stretch)) for p, a in zip(profile, angles)]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(pts, fill=255)
    return np.asarray(canvas) > 0


def _rect(h: int, w: int, rng: np.random.Generator, area_px: float) -> np.ndarray:
    aspect = math.exp(rng.uniform(math.log(0.4), math.log(2.5)))
    bh = int(round(min(h, math.sqrt(area_px * aspect))))
    bw = int(round(min(w, area_px / max(bh, 1))))
    bh, bw = max(1, bh), max(1, bw)
    y0 = int(rng.integers(0, max(1, h - bh + 1)))
    x0 = int(rng.integers(0, max(1, w - bw + 1)))
    m = np.zeros((h, w), dtype=bool)
    m[y0:y0 + bh, x0:x0 + bw] = True
    return m


def object_mask(h: int, w: int, rng: np.random.Generator, kind: str, min_area: float = 0.05,
                max_area: float = 0.5) -> np.ndarray:
    """An object-shaped hole ("blob" or "box": one or two shapes) covering min_area..max_area."""
    total = float(h * w)
    for _ in range(20):
        target = rng.uniform(min_area, max_area) * total
        parts = 1 if rng.random() < 0.7 else 2
        m = np.zeros((h, w), dtype=bool)
        for _p in range(parts):
            m |= (_blob if kind == "blob" else _rect)(h, w, rng, target / parts)
        if min_area * total <= m.sum() <= max_area * total:
            return m
    return _fallback_box(h, w, rng, (min_area + max_area) / 2)


def benchmark_mask(h: int, w: int, index: int, seed: int = 0) -> np.ndarray:
    """The benchmark's mask for image number `index`: thin, medium, thick in turn; 3-50% hole.

    Deterministic for (h, w, index, seed).
    """
    kind = KINDS[index % len(KINDS)]
    rng = np.random.default_rng([int(seed), int(index)])
    return random_mask(h, w, rng, kind, min_area=0.03, max_area=0.5)


def benchmark_kind(index: int) -> str:
    return KINDS[index % len(KINDS)]


def mask_pool(n: int, size: int, rng: np.random.Generator, kind: str = "mixed", min_area: float = 0.05,
              max_area: float = 0.5, out: Optional[np.ndarray] = None) -> np.ndarray:
    """`n` square masks of side `size` as a bool (n, size, size) array (the trainer's pool)."""
    pool = out if out is not None else np.empty((n, size, size), dtype=bool)
    for i in range(n):
        pool[i] = random_mask(size, size, rng, kind, min_area, max_area)
    return pool
