"""Connected regions of masks (restorer/engine/regions.py): labels, boxes, keep_connected."""

from __future__ import annotations

import numpy as np
import pytest

from restorer.engine.regions import keep_connected, region_boxes, region_labels


def test_labels_and_boxes_use_8_connectivity_in_raster_order():
    mask = np.zeros((6, 8), bool)
    mask[0, 5:8] = True  # region 1 (first in raster order)
    mask[1, 0] = mask[2, 1] = mask[3, 2] = True  # a diagonal: one region (2)
    mask[5, 6:8] = True  # region 3
    mask[4, 4] = True  # touches (5, 5)? no: (5, 6) is two columns away -> its own region (3, before row 5)
    labels, n = region_labels(mask)
    assert n == 4
    assert set(np.unique(labels[mask])) == {1, 2, 3, 4} and not labels[~mask].any()
    assert labels[0, 5] == 1 and labels[1, 0] == labels[3, 2] == 2 and labels[4, 4] == 3 and labels[5, 7] == 4
    assert region_boxes(mask) == [(0, 5, 1, 8), (1, 0, 4, 3), (4, 4, 5, 5), (5, 6, 6, 8)]
    assert region_labels(np.zeros((3, 3), bool))[1] == 0 and region_boxes(np.zeros((3, 3), bool)) == []


def test_keep_connected_keeps_regions_with_a_seed_only():
    mask = np.zeros((5, 9), bool)
    mask[1, 0:4] = True  # a seeded region ...
    mask[2, 4] = True  # ... continued diagonally
    mask[3, 7:9] = True  # unseeded
    seeds = np.zeros_like(mask)
    seeds[1, 1] = True
    seeds[0, 8] = True  # a seed outside the mask counts for nothing
    kept = keep_connected(mask, seeds)
    assert kept[1, 0:4].all() and kept[2, 4] and not kept[3, 7:9].any()
    assert int(kept.sum()) == 5
    assert not keep_connected(mask, np.zeros_like(mask)).any()
    with pytest.raises(ValueError):
        keep_connected(mask, seeds[:4])
