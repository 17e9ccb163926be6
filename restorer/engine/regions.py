"""Connected regions of a bool mask (8-connectivity), numpy only.

Runs of set pixels are found per row (vectorised), and runs that touch a run of the row above
(8-connectivity) are joined with a union-find; the cost grows with the number of runs, not
pixels. Used by the inpainting windows (`region_boxes`) and by the damage detector's hysteresis
threshold (`keep_connected`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Runs:
    """The mask's runs (row, start column, end column exclusive) and the region number (0..n-1) of each."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    region: np.ndarray
    count: int


def mask_runs(mask: np.ndarray) -> Runs:
    """The runs of `mask` (H, W) and their 8-connected region numbers, numbered in raster order of
    each region's first run."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    sr, sc = np.nonzero(d == 1)  # run starts (row-major order)
    _er, ec = np.nonzero(d == -1)  # run ends, exclusive; same order as the starts
    n = len(sr)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty, empty, 0)
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    row_start = np.searchsorted(sr, np.arange(h + 1))
    for r in range(1, h):
        a0, a1 = row_start[r - 1], row_start[r]
        b0, b1 = row_start[r], row_start[r + 1]
        if a0 == a1 or b0 == b1:
            continue
        i, j = a0, b0
        while i < a1 and j < b1:
            # runs [sc, ec) touch with 8-connectivity when sc_i <= ec_j and sc_j <= ec_i
            if sc[i] <= ec[j] and sc[j] <= ec[i]:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
            if ec[i] < ec[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(n)])
    _uniq, region = np.unique(roots, return_inverse=True)  # roots are each region's first run: raster order
    return Runs(sr, sc, ec, region.reshape(-1), int(region.max()) + 1)


def region_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, x0, y1, x1), end-exclusive, of the mask's 8-connected regions."""
    runs = mask_runs(mask)
    if runs.count == 0:
        return []
    order = np.argsort(runs.region, kind="stable")
    cuts = np.flatnonzero(np.diff(runs.region[order])) + 1
    starts = np.concatenate([[0], cuts])
    y0 = np.minimum.reduceat(runs.row[order], starts)
    y1 = np.maximum.reduceat(runs.row[order], starts) + 1
    x0 = np.minimum.reduceat(runs.start[order], starts)
    x1 = np.maximum.reduceat(runs.end[order], starts)
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(y0, x0, y1, x1)]


def region_labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels (H, W) int32: 0 outside the mask, 1..n per 8-connected region; n)."""
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, dtype=np.int32)
    runs = mask_runs(mask)
    if runs.count == 0:
        return labels, 0
    lengths = runs.end - runs.start
    first = np.cumsum(lengths) - lengths  # index of each run's first pixel in the flat list
    cols = np.repeat(runs.start, lengths) + (np.arange(int(lengths.sum())) - np.repeat(first, lengths))
    labels[np.repeat(runs.row, lengths), cols] = np.repeat(runs.region + 1, lengths).astype(np.int32)
    return labels, runs.count


def keep_connected(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The regions of `mask` (8-connected) that hold at least one `seeds` pixel; seeds outside the mask
    do not count. Both (H, W) bool; returns a new bool mask."""
    mask = np.asarray(mask, dtype=bool)
    seeds = np.asarray(seeds, dtype=bool)
    if mask.shape != seeds.shape:
        raise ValueError(f"mask {mask.shape} and seeds {seeds.shape} differ in shape")
    labels, n = region_labels(mask)
    if n == 0:
        return np.zeros_like(mask)
    keep = np.zeros(n + 1, dtype=bool)
    keep[labels[seeds & mask]] = True
    keep[0] = False
    return keep[labels]
