"""Colorize benchmark: colour photos turned grey, colorized, compared with their original colour.

Protocol (fixed; results are comparable between runs):

* images: the image files in --data (sorted by path, recursive; use photos-val, never a training folder),
  the first --limit of them, at their full size;
* each photo is turned grey by keeping its CIE Lab L alone (a = b = 0: ``colorize_image(..., strength=0)``),
  then colorized by ``restorer.engine.pipelines.colorize.colorize_image`` (the app's code path: prediction at
  <= 512 px, chroma soft-clamped to 40, the original L kept) at --strength (default 1);
* per photo, against the original (restorer/engine/training/colorize.py: colour_scores): the mean a/b
  error (Euclidean a/b distance per pixel, i.e. Delta E76 with L equal), the same for the "keep it grey"
  baseline (a = b = 0), and the Hasler-Suesstrunk colourfulness of output and original; also the mean
  chroma C* of output and original. Figures are means over photos (each photo counts once); "photos
  better than grey" counts the photos whose error is below their grey error;
* garish check: the share of pixels whose output chroma exceeds the original's by more than 20.

Results are printed and written to benchmarks/results/colorize.md; --comparison writes a small JPEG of
grey | colorized | original rows for the first --comparison-images photos.

    python benchmarks/colorize_benchmark.py --data DIR [--model ID | --weights FILE | --checkpoint FILE]
        [--limit N] [--strength S] [--comparison docs/colorize-examples.jpg]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._models import load_task_model  # noqa: E402
from benchmarks._photos import load_photos  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from restorer.engine.pipelines.colorize import MAX_CHROMA, WORK_SIZE, colorize_image, rgb_to_lab  # noqa: E402
from restorer.engine.training.colorize import colour_scores  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "colorize.md"
GARISH_EXCESS = 20.0  # chroma units above the original's


def load_model(args: argparse.Namespace):
    return load_task_model(args, "colorize", "colorize_unet")


def chroma(rgb: np.ndarray) -> np.ndarray:
    ab = rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).double() / 255)[1:]
    return ab.square().sum(0).sqrt().numpy()


def comparison_image(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, width: int = 240) -> None:
    """grey | colorized | original per row, each scaled to `width` px wide, as a JPEG (quality 85)."""
    from PIL import Image

    strips = []
    for grey, out, ref in rows:
        h = max(1, round(ref.shape[0] * width / ref.shape[1]))
        cells = [np.asarray(Image.fromarray(a).resize((width, h), Image.LANCZOS)) for a in (grey, out, ref)]
        gap = np.full((h, 4, 3), 255, np.uint8)
        strips.append(np.concatenate([cells[0], gap, cells[1], gap, cells[2]], 1))
        strips.append(np.full((4, strips[-1].shape[1], 3), 255, np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(strips[:-1], 0)).save(path, quality=85, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model")
    ap.add_argument("--weights")
    ap.add_argument("--checkpoint")
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--max-chroma", type=float, default=MAX_CHROMA)
    ap.add_argument("--work-size", type=int, default=WORK_SIZE)
    ap.add_argument("--comparison", type=Path, help="write grey | colorized | original rows here (JPEG)")
    ap.add_argument("--comparison-images", type=int, default=4)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    what, net = load_model(args)
    photos = load_photos(args.data, args.limit)
    rows, garish, c_out, c_ref, shown = [], [], [], [], []
    t0 = time.perf_counter()
    for i, (name, ref) in enumerate(photos):
        grey = colorize_image(ref, net, strength=0.0)
        out = colorize_image(grey, net, strength=args.strength, max_chroma=args.max_chroma, work_size=args.work_size)
        sc = colour_scores(out, ref)
        rows.append(sc)
        co, cr = chroma(out), chroma(ref)
        c_out.append(float(co.mean()))
        c_ref.append(float(cr.mean()))
        garish.append(float((co - cr > GARISH_EXCESS).mean()))
        if i < args.comparison_images:
            shown.append((grey, out, ref))
        print(f"{name}: a/b error {sc['ab_error']:.2f} (grey {sc['ab_error_grey']:.2f}); colourfulness "
              f"{sc['colourfulness']:.1f} (original {sc['colourfulness_original']:.1f})", flush=True)
    elapsed = time.perf_counter() - t0
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    better = sum(r["ab_error"] < r["ab_error_grey"] for r in rows)
    lines = [f"# Colorize on {args.data.name} ({len(photos)} photos turned grey, full size)", "",
             f"{what}; strength {args.strength}, max chroma {args.max_chroma}, work size {args.work_size}; "
             f"torch threads {torch.get_num_threads()}; {elapsed:.0f} s", "",
             "| | mean a/b error (ΔE, L kept) | colourfulness | mean chroma C* |", "|---|---|---|---|",
             f"| model | **{mean['ab_error']:.2f}** | {mean['colourfulness']:.1f} | {np.mean(c_out):.1f} |",
             f"| keep it grey (baseline) | {mean['ab_error_grey']:.2f} | 0.0 | 0.0 |",
             f"| originals | 0 | {mean['colourfulness_original']:.1f} | {np.mean(c_ref):.1f} |", "",
             f"Photos better than grey: {better} of {len(rows)}. Error vs grey: "
             f"{100 * (mean['ab_error'] / mean['ab_error_grey'] - 1):+.1f}%. Pixels more than {GARISH_EXCESS:g} "
             f"chroma above the original's (garish check): {100 * float(np.mean(garish)):.2f}%."]
    write_results("\n".join(lines) + "\n", args.output)
    if args.comparison and shown:
        comparison_image(shown, args.comparison)
        print(f"comparison: {args.comparison} ({args.comparison.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
