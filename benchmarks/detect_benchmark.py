"""Damage-detection benchmark: mask precision / recall / IoU on held-out synthetic damage, false marks on
undamaged photos, and the CPU time of a 2-megapixel scan.

Protocol (fixed; results are comparable between runs):

* images: the image files in --data (sorted by path, recursive; use photos-val, never a training folder),
  the first --limit of them, each centre-cropped to at most --size x --size px (damage is drawn in pixels,
  so cropping keeps its widths as stated);
* image number i gets three versions, each from ``torch.Generator().manual_seed(1000 * set + i)``:
  1. *scratches*: ``DamageParams().only_scratches(2.0)``: 1-4 long scratches 2-8 px wide, bright or dark,
     on colour/grey/sepia, faded, blurred, textured and grainy photos, nothing else;
  2. *all damage*: ``DamageParams()`` with no clean samples: scratches 1-8 px, hairs, cracks, creases,
     specks, blotches;
  3. *undamaged*: ``DamageParams().undamaged()``: the same tone, texture and grain, no damage;
* the model runs through ``restorer.engine.pipelines.detect.detect_damage`` (the app's code path) at
  --threshold (default: the model's own threshold, stored in its file when it was chosen on held-out
  synthetic data; 0.5 for a model without one) and --low-threshold (the hysteresis' lower threshold;
  default: the model's own, if its file has one, else none); pixel counts are summed over all images of a set before precision, recall
  and IoU are computed; "clean marked" is the share of the undamaged images' pixels marked;
* a threshold sweep of the scratch set is printed for information (choosing a threshold there and
  quoting the figure at it would be tuning on the test set);
* speed: a 1632 x 1224 (2.0 Mpx) photo-like image through ``detect_damage`` on the CPU, median of 3
  runs after a warm-up, beside Pillow's GaussianBlur(2) of the same image as the same-run baseline.

Results are printed and written to benchmarks/results/detect.md.

    python benchmarks/detect_benchmark.py --data DIR [--model ID | --weights FILE | --checkpoint FILE]
        [--limit N] [--size PX] [--threshold T] [--low-threshold T]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._models import load_task_model  # noqa: E402
from restorer.engine.pipelines.detect import detect_damage, model_low_threshold, model_threshold  # noqa: E402
from restorer.engine.training.damage import DamageParams, make_damage  # noqa: E402
from restorer.engine.training.data import to_uint8_image  # noqa: E402
from restorer.engine.training.detect import mask_scores  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
RESULTS = ROOT / "benchmarks" / "results" / "detect.md"
SETS = (("scratches >= 2 px", DamageParams().only_scratches(2.0)),
        ("all damage", DamageParams(p_clean=0.0)),
        ("undamaged", DamageParams().undamaged()))


def load_model(args: argparse.Namespace):
    return load_task_model(args, "detect", "damage_unet")


def centre_crops(folder: Path, limit: int, size: int) -> list[np.ndarray]:
    from benchmarks._photos import load_photos

    return [arr for _, arr in load_photos(folder, limit, size)]


def photo_like(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.3 * np.sin(xx / (40 + 10 * c)) * np.cos(yy / 55) for c in range(3)], -1)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def time_2mpx(net, reps: int = 3, threshold=None, low_threshold=None) -> tuple[float, float]:
    from PIL import Image, ImageFilter

    rgb = photo_like(1224, 1632)
    detect_damage(rgb[:256, :256], net)  # warm-up
    t_model, t_base = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        detect_damage(rgb, net, threshold=threshold, low_threshold=low_threshold)
        t_model.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(2))
        t_base.append(time.perf_counter() - t0)
    return statistics.median(t_model), statistics.median(t_base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model")
    ap.add_argument("--weights")
    ap.add_argument("--checkpoint")
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threshold", type=float, default=None,
                    help="default: the model's own threshold (chosen on held-out data), else 0.5")
    ap.add_argument("--low-threshold", type=float, default=None,
                    help="hysteresis' lower threshold; default: the model's own (chosen on held-out data), else none")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the 2 Mpx timing")
    ap.add_argument("--save-examples", type=Path, help="write side-by-side PNGs of the first 4 images here")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    what, net = load_model(args)
    if args.speed_only:
        t_model, t_base = time_2mpx(net)
        print(f"{what}; torch threads {torch.get_num_threads()}; 2.0 Mpx (1632x1224) on the CPU: detection "
              f"{t_model:.2f} s (median of 3); same-run baseline Pillow GaussianBlur(2) {t_base:.3f} s "
              f"(ratio {t_model / t_base:.0f}x)")
        return 0
    crops = centre_crops(args.data, args.limit, args.size)
    thr = args.threshold if args.threshold is not None else model_threshold(net)
    low = args.low_threshold if args.low_threshold is not None else model_low_threshold(net)
    low = low if low is not None and low < thr else None
    sweep = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    rows = []
    sweep_counts = {t: [] for t in sweep}
    t_start = time.perf_counter()
    for s, (name, params) in enumerate(SETS, 1):
        preds, truths = [], []
        for i, rgb in enumerate(crops):
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            res = make_damage(x, params, torch.Generator().manual_seed(1000 * s + i))
            damaged = to_uint8_image(res.damaged[0])
            truth = res.mask[0, 0].numpy()
            out = detect_damage(damaged, net, threshold=thr, low_threshold=low)
            preds.append(out.mask.ravel())
            truths.append(truth.ravel())
            if s == 1:
                for t in sweep:
                    sweep_counts[t].append((out.probability >= t).ravel())
            if args.save_examples and i < 4:
                from PIL import Image

                args.save_examples.mkdir(parents=True, exist_ok=True)
                tm = np.repeat(truth[..., None] * 255, 3, 2).astype(np.uint8)
                pm = np.repeat(out.mask[..., None] * 255, 3, 2).astype(np.uint8)
                Image.fromarray(np.concatenate([damaged, pm, tm], 1)).save(args.save_examples / f"set{s}_{i}.png")
        pred, truth = np.concatenate(preds), np.concatenate(truths)
        sc = mask_scores(pred, truth)
        rows.append((name, sc, float(truth.mean()), float(pred.mean())))
        print(f"{name}: precision {sc['precision']:.3f} recall {sc['recall']:.3f} IoU {sc['iou']:.3f} "
              f"(true {truth.mean() * 100:.2f}% / marked {pred.mean() * 100:.2f}% of pixels)", flush=True)
    truth1 = np.concatenate([make_damage(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, SETS[0][1],
                                         torch.Generator().manual_seed(1000 + i)).mask[0, 0].numpy().ravel()
                             for i, rgb in enumerate(crops)])
    sweep_lines = []
    for t in sweep:
        sc = mask_scores(np.concatenate(sweep_counts[t]), truth1)
        sweep_lines.append(f"| {t:.1f} | {sc['precision']:.3f} | {sc['recall']:.3f} | {sc['iou']:.3f} |")
    elapsed = time.perf_counter() - t_start
    lines = [f"# Damage detection on {args.data.name} ({len(crops)} images, centre crops <= {args.size} px)", "",
             f"{what}; threshold {thr}{f' (hysteresis down to {low})' if low else ''}; torch threads {torch.get_num_threads()}; {elapsed:.0f} s for the masks", "",
             "| set | precision | recall | IoU | true % | marked % |", "|---|---|---|---|---|---|"]
    for name, sc, tp, mp in rows:
        if name == "undamaged":
            lines.append(f"| {name} | - | - | - | 0 | **{mp * 100:.2f}** (clean pixels marked) |")
        else:
            lines.append(f"| {name} | {sc['precision']:.3f} | {sc['recall']:.3f} | **{sc['iou']:.3f}** | "
                         f"{tp * 100:.2f} | {mp * 100:.2f} |")
    lines += ["", "Threshold sweep (plain thresholds), scratches >= 2 px (information only):", "",
              "| threshold | precision | recall | IoU |", "|---|---|---|---|", *sweep_lines]
    if not args.no_speed:
        t_model, t_base = time_2mpx(net, threshold=thr, low_threshold=low)
        lines += ["", f"2.0 Mpx (1632x1224) on the CPU: detection {t_model:.2f} s (median of 3); "
                      f"same-run baseline Pillow GaussianBlur(2) {t_base:.3f} s (ratio {t_model / t_base:.0f}x)"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
