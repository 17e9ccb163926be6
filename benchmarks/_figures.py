"""Figures the benchmarks save for people to look at: grids of same-sized 100% crops with labels, and where to
put a crop so it shows something (the window with the most gradient energy on a coarse grid).

Layout of ``labelled_grid`` (tests check it): an optional title band, a band with one label over each column,
then per row a band with the row's title and the row's cells; bands are ``LABEL_H`` px high, cells are
separated by ``gap`` px of white horizontally and rows by ``gap`` px vertically. So the figure is
``cols * cell_w + (cols - 1) * gap`` wide and ``LABEL_H * (title + 1) + rows * (LABEL_H + cell_h) +
(rows - 1) * gap`` high. Cells are pasted as they are: nothing is resampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

LABEL_H = 16
GAP = 4


def bad_input(prog: str, message: str) -> None:
    """One line on stderr and exit status 2 (the project's rule for bad input)."""
    import sys

    print(f"{prog}: {message}", file=sys.stderr)
    raise SystemExit(2)


def image_format(path: Path) -> Optional[str]:
    """Pillow's format name for the file's suffix (None for a suffix Pillow cannot write)."""
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt if fmt in Image.SAVE else None


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def busiest_window(gray: np.ndarray, size: tuple[int, int], step: int, align: int = 1, parts: int = 1,
                   bounds: Optional[tuple[int, int, int, int]] = None) -> tuple[int, int]:
    """(y, x) of the `size` (h, w) window with the most gradient energy (mean |dx| + |dy| of `gray`) among the
    positions on a grid of `step` px, aligned to multiples of `align`, inside `bounds` (y0, x0, y1, x1: the
    window lies within them; default the whole image). ``parts`` > 1 scores a window by its least textured
    part of a parts x parts split, so a window wins only when texture fills it (grass, foliage, brick), not
    for one strong edge. Deterministic: the first best position in row-major order wins."""
    h, w = gray.shape
    wh, ww = size
    y0, x0, y1, x1 = bounds or (0, 0, h, w)
    energy = np.zeros((h, w), np.float64)
    energy[:, 1:] += np.abs(np.diff(gray, axis=1))
    energy[1:, :] += np.abs(np.diff(gray, axis=0))
    integral = np.zeros((h + 1, w + 1), np.float64)
    integral[1:, 1:] = energy.cumsum(0).cumsum(1)

    def mean(y: int, x: int, hh: int, ww_: int) -> float:
        s = integral[y + hh, x + ww_] - integral[y, x + ww_] - integral[y + hh, x] + integral[y, x]
        return s / max(1, hh * ww_)

    def first(v: int) -> int:
        return -(-v // align) * align

    step = max(align, step - step % align)
    best, where = -1.0, (first(y0), first(x0))
    for y in range(first(y0), y1 - wh + 1, step):
        for x in range(first(x0), x1 - ww + 1, step):
            if parts <= 1:
                score = mean(y, x, wh, ww)
            else:
                ph, pw = wh // parts, ww // parts
                score = min(mean(y + i * ph, x + j * pw, ph, pw) for i in range(parts) for j in range(parts))
            if score > best:
                best, where = score, (y, x)
    return where


def _fit(draw, text: str, width: int) -> str:
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def labelled_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], labels: Sequence[str],
                  title: str = "", gap: int = GAP):
    """A PIL image of `rows` ((row title, cells)); every cell has the same (h, w, 3) uint8 shape, one label
    per column. See the module's docstring for the layout."""
    from PIL import Image, ImageDraw

    cols = len(labels)
    ch, cw = rows[0][1][0].shape[:2]
    for _, cells in rows:
        if len(cells) != cols or any(c.shape[:2] != (ch, cw) for c in cells):
            raise ValueError("every row needs one cell per label, all of one size")
    width = cols * cw + (cols - 1) * gap
    top = LABEL_H * (2 if title else 1)
    height = top + len(rows) * (LABEL_H + ch) + (len(rows) - 1) * gap
    fig = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(fig)
    if title:
        draw.text((3, 2), _fit(draw, title, width - 6), fill="black")
    for i, label in enumerate(labels):
        draw.text((i * (cw + gap) + 3, top - LABEL_H + 2), _fit(draw, label, cw - 6), fill="black")
    y = top
    for row_title, cells in rows:
        draw.text((3, y + 2), _fit(draw, row_title, width - 6), fill=(90, 90, 90))
        y += LABEL_H
        for i, cell in enumerate(cells):
            fig.paste(Image.fromarray(np.ascontiguousarray(cell[..., :3])), (i * (cw + gap), y))
        y += ch + gap
    return fig


def save_figure(fig, path: Path, quality: int = 85) -> None:
    """Saved whole or not at all (a temporary file beside it, then renamed); JPEG at `quality`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = image_format(path)
    tmp = path.with_name(path.name + ".tmp")
    fig.save(tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {"optimize": True}))
    tmp.replace(path)
