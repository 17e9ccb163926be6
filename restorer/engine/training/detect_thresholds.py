"""Thresholds of a damage detector, chosen on held-out synthetic damage (issue #19).

`threshold_sweep` scores held-out images damaged three ways (scratches >= 2 px, all damage,
undamaged) at plain thresholds and hysteresis pairs (`pipelines.detect.threshold_mask`);
`choose_threshold` / `choose_thresholds` pick the plain threshold with the best scratch IoU that
keeps clean marks under `MAX_CLEAN_MARKED`, and a pair only when it beats it within the bounds;
`format_sweep` prints the sweep. Used by the trainer's export and `--calibrate` (training/detect.py).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from restorer.engine.training.damage import DamageParams, make_damage

THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(13))  # 0.30 ... 0.90
HYSTERESIS_SEEDS = (*THRESHOLDS, 0.95)  # seed thresholds tried with each low threshold below them
LOW_THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3)
MAX_CLEAN_MARKED = 0.006  # the chosen threshold keeps clean pixels marked below this (the bar is 1%)
ALL_IOU_SLACK = 0.01  # a hysteresis may lower the all-damage IoU (dust, specks) by at most this


@torch.no_grad()
def threshold_sweep(net: torch.nn.Module, images: list[np.ndarray], seeds_per_image: int = 2,
                    thresholds: tuple[float, ...] = THRESHOLDS, low_thresholds: tuple[float, ...] = (),
                    seed_thresholds: tuple[float, ...] = HYSTERESIS_SEEDS) -> list[dict[str, float]]:
    """Per threshold: scratch (>= 2 px) precision/recall/IoU, all-damage IoU and clean pixels marked on
    held-out images (uint8 RGB crops), each damaged `seeds_per_image` times with fixed seeds (other
    seeds than the benchmark's). Counts are summed over all images of a set. Every row has a
    "low_threshold": equal to its "threshold" for a plain threshold; with `low_thresholds`, rows of
    hysteresis pairs follow (each of `seed_thresholds` with each lower low threshold; see
    `pipelines.detect.threshold_mask`)."""
    from restorer.engine.pipelines.detect import threshold_mask

    net = net.eval()
    net = net.fused() if hasattr(net, "fused") else net
    sets = (DamageParams().only_scratches(2.0), DamageParams(p_clean=0.0), DamageParams().undamaged())
    pairs = [(float(t), float(t)) for t in thresholds]
    pairs += [(float(t), float(lo)) for t in seed_thresholds for lo in low_thresholds if lo < t]
    counts = {pair: np.zeros((3, 3)) for pair in pairs}  # per set: tp, fp, fn
    clean_px = 0
    for i, rgb in enumerate(images):
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
        for k in range(seeds_per_image):
            for s, params in enumerate(sets):
                res = make_damage(x, params, torch.Generator().manual_seed(77_000 + 1000 * s + 10 * i + k))
                prob = torch.sigmoid(net(res.damaged)).numpy()[0, 0]
                truth = res.mask[0, 0].numpy()
                if s == 2:
                    clean_px += truth.size
                for pair in pairs:
                    pred = threshold_mask(prob, *pair)
                    counts[pair][s] += (np.logical_and(pred, truth).sum(), np.logical_and(pred, ~truth).sum(),
                                        np.logical_and(~pred, truth).sum())
    rows = []
    for t, lo in pairs:
        (tp, fp, fn), (atp, afp, afn), (_, cfp, _) = counts[(t, lo)]
        # plain floats: the rows go into the model file's meta, which must load with weights_only
        rows.append({"threshold": t, "low_threshold": lo, "precision": float(tp / max(1.0, tp + fp)),
                     "recall": float(tp / max(1.0, tp + fn)), "iou": float(tp / max(1.0, tp + fp + fn)),
                     "all_iou": float(atp / max(1.0, atp + afp + afn)), "clean_marked": float(cfp / max(1, clean_px))})
    return rows


def _plain(row: dict[str, float]) -> bool:
    return float(row.get("low_threshold", row["threshold"])) >= float(row["threshold"])


def choose_threshold(rows: list[dict[str, float]], max_clean: float = MAX_CLEAN_MARKED) -> float:
    """The sweep's plain threshold with the best scratch IoU among those marking at most `max_clean` of
    the clean pixels (else the one marking the fewest)."""
    rows = [r for r in rows if _plain(r)]
    ok = [r for r in rows if r["clean_marked"] <= max_clean]
    if not ok:
        return float(min(rows, key=lambda r: (r["clean_marked"], -r["threshold"]))["threshold"])
    return float(max(ok, key=lambda r: (r["iou"], r["threshold"]))["threshold"])


def choose_thresholds(rows: list[dict[str, float]], max_clean: float = MAX_CLEAN_MARKED,
                      all_slack: float = ALL_IOU_SLACK) -> tuple[float, Optional[float]]:
    """(threshold, low threshold or None): the best plain threshold (`choose_threshold`), or the
    hysteresis pair with a better scratch IoU that still marks at most `max_clean` of the clean pixels
    and loses at most `all_slack` of the plain threshold's all-damage IoU (the specks and dust)."""
    thr = choose_threshold(rows, max_clean)
    plain = next(r for r in rows if _plain(r) and abs(r["threshold"] - thr) < 1e-9)
    ok = [r for r in rows if not _plain(r) and r["clean_marked"] <= max_clean
          and r["all_iou"] >= plain["all_iou"] - all_slack and r["iou"] > plain["iou"]]
    if not ok:
        return thr, None
    best = max(ok, key=lambda r: (r["iou"], r["threshold"], r["low_threshold"]))
    return float(best["threshold"]), float(best["low_threshold"])


def format_sweep(rows: list[dict[str, float]], chosen: Optional[float] = None,
                 chosen_low: Optional[float] = None) -> str:
    """The sweep as a table; `chosen` (and `chosen_low`, None for a plain threshold) marks the chosen row."""
    lines = ["threshold  low    scratch P / R / IoU      all-damage IoU  clean marked"]
    for r in rows:
        low = float(r.get("low_threshold", r["threshold"]))
        is_chosen = chosen is not None and abs(r["threshold"] - chosen) < 1e-9 and (
            _plain(r) if chosen_low is None else abs(low - chosen_low) < 1e-9)
        mark = "  <- chosen" if is_chosen else ""
        low_text = "  -  " if _plain(r) else f"{low:.2f} "
        lines.append(f"{r['threshold']:.2f}       {low_text}  {r['precision']:.3f} / {r['recall']:.3f} / {r['iou']:.3f}   "
                     f"{r['all_iou']:.3f}           {r['clean_marked'] * 100:.2f}%{mark}")
    return "\n".join(lines)
