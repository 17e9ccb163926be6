"""Side-by-side damage masks of real old photos: for looking at a detector, not for measuring it.

    python scripts/detect_overlay.py --photos DIR --name a.jpg --name b.jpg --name c.jpg \
        --weights OLD.pt --weights NEW.pt -o docs/images/detect-old-photos.jpg [--width 520]

One row per photo: the photo, then per model file the photo with its mask painted red (at the model's own
threshold(s), through the app's `detect_damage`; "t=0.95/0.30": a hysteresis from 0.95 down to 0.30), each
panel `--width` px wide and labelled with the model's file name and the share of pixels it marks. Written as a JPEG (quality 62) small enough for the docs. The
photos stay where they are; nothing is copied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def overlay(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = rgb.astype(np.float32).copy()
    red = np.array([255.0, 0.0, 0.0], np.float32)
    out[mask] = 0.35 * out[mask] + 0.65 * red
    return out.clip(0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    from PIL import Image, ImageDraw, ImageOps

    from restorer.engine.modelfile import build_and_load
    from restorer.engine.pipelines.detect import detect_damage
    from restorer.engine.registry import read_model_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", required=True, type=Path)
    ap.add_argument("--name", action="append", required=True, help="photo file in --photos (repeatable)")
    ap.add_argument("--weights", action="append", required=True, help="detect model file (repeatable)")
    ap.add_argument("-o", "--output", required=True, type=Path)
    ap.add_argument("--width", type=int, default=520, help="width of each panel")
    args = ap.parse_args(argv)
    models = [(Path(w).name, build_and_load(read_model_file(Path(w)), w)) for w in args.weights]
    rows = []
    for name in args.name:
        with Image.open(args.photos / name) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        panels = [("photo", rgb)]
        for label, net in models:
            res = detect_damage(rgb, net)
            thr = f"{res.threshold:.2f}" + (f"/{res.low_threshold:.2f}" if res.low_threshold else "")
            panels.append((f"{label}: {100 * res.fraction:.2f}% marked (t={thr})",
                           overlay(rgb, res.mask)))
            print(f"{name}: {label} marks {100 * res.fraction:.2f}% at threshold {thr}")
        h = int(round(rgb.shape[0] * args.width / rgb.shape[1]))
        row = Image.new("RGB", (args.width * len(panels), h + 18), "white")
        draw = ImageDraw.Draw(row)
        for k, (label, arr) in enumerate(panels):
            row.paste(Image.fromarray(arr).resize((args.width, h), Image.LANCZOS), (k * args.width, 18))
            draw.text((k * args.width + 4, 3), f"{name} - {label}" if k == 0 else label, fill="black")
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=62, optimize=True)
    print(f"{args.output}: {sheet.width}x{sheet.height}, {args.output.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
