"""Inpainting benchmark: a Restorer inpainting model against OpenCV's Telea inpainting.

Protocol (fixed; results are comparable between runs):

* images: every image file in --data (sorted by path, recursive), the first --limit of them;
* image number i gets ``benchmark_mask(h, w, i, seed=0)``: thin, medium and thick free-form
  masks in turn, 3-50% of the image;
* a method sees the image with the hole's pixels set to 0, plus the mask, and returns the whole
  image; the model runs through `restorer.engine.pipelines.inpaint.inpaint_image` (windows
  around each hole region), exactly the app's code path; Telea is ``cv2.inpaint`` radius 5;
* scores over the whole RGB image: PSNR (data range 255), SSIM
  (``skimage.metrics.structural_similarity(..., channel_axis=2, data_range=255)``) and hole L1,
  the mean absolute error inside the hole on a 0..1 scale x 100;
* one markdown table per group (thin, medium, thick, all) with the mean of each score and the
  mean hole area, printed and written to benchmarks/results/inpaint.md.

Needs the benchmark-only extras ``opencv-python-headless`` and ``scikit-image``.

    python benchmarks/inpaint_benchmark.py --data DIR [--model ID | --weights FILE] [--limit N] [--device cpu]

``--zoom FILE`` (JPEG or PNG) makes, instead of the scored run, a figure to look at at 100% zoom: for each
``--zoom-image`` (a photo's file name or the start of it; default ``ZOOM_IMAGES``, photos-val photos where the
box lands on grass, foliage and stone), a ``--zoom-box`` px square hole (240 px: 22% of a 512 px square) where
texture fills the box (``_figures.busiest_window`` with parts=3: the position whose least textured ninth is the
most textured; grid of 16 px), filled by the model through the same call as the scored run and by Telea; per
photo one row of crops around the box, not resampled: holes (white) | Restorer | Telea | original. Needs
neither scikit-image nor, for the Restorer column alone, OpenCV (without it the Telea column is left out).

    python benchmarks/inpaint_benchmark.py --data ../shared/datasets/photos-val --zoom docs/images/fill-zoom.jpg
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _photos  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from restorer.engine.training.masks import KINDS, benchmark_mask  # noqa: E402
from restorer.engine.pipelines.inpaint import THIN_WIDTH, THIN_WORK_SIZE, WORK_SIZE  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "inpaint.md"
ZOOM_IMAGES = ("field_wild", "barn", "forest_broadleaf", "ruin")  # grass, grass, foliage, stone
ZOOM_MARGIN = 32  # px of the photo shown around the box
PROG = "inpaint_benchmark"


def _need(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"this benchmark needs '{package}' (a benchmark-only extra): pip install {package}")


def load_rgb(path: Path) -> Optional[np.ndarray]:
    try:
        return _photos.load_rgb(path)
    except Exception as exc:  # a broken file is skipped, not fatal
        print(f"skipping unreadable '{path}': {exc}", file=sys.stderr)
        return None


def scores(out: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> tuple[float, float, float]:
    from skimage.metrics import structural_similarity

    diff = out.astype(np.float64) - gt.astype(np.float64)
    mse = float(np.mean(diff**2))
    psnr = 100.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    ssim = float(structural_similarity(out, gt, channel_axis=2, data_range=255))
    hole_l1 = float(np.abs(diff)[hole].mean() / 255.0 * 100.0)
    return psnr, ssim, hole_l1


def telea_method() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    cv2 = _need("cv2", "opencv-python-headless")

    def run(masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(masked[..., ::-1])
        out = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        return np.ascontiguousarray(out[..., ::-1])

    return run


def optional_telea() -> Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Telea as `telea_method` makes it, or None when OpenCV is not installed."""
    import importlib.util

    return telea_method() if importlib.util.find_spec("cv2") is not None else None


def model_method(args: argparse.Namespace) -> tuple[Optional[Callable], str]:
    import torch

    from restorer.engine.pipelines.inpaint import inpaint_image

    if args.weights:
        from restorer.engine.archs import build_arch
        from restorer.engine.registry import read_model_file

        payload = read_model_file(Path(args.weights))
        if payload.get("task") != "inpaint":
            sys.exit(f"'{args.weights}' is a {payload.get('task')} model, not an inpainting model")
        model = build_arch(payload["arch"], payload["params"])
        model.load_state_dict(payload["state_dict"])
        name = Path(args.weights).stem
    else:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        try:
            spec = registry.get_spec(args.model, task="inpaint") if args.model else registry.default_model("inpaint")
        except RestorerError as exc:
            if args.model:
                sys.exit(str(exc))
            print(f"no inpainting model: {exc}; only Telea is measured", file=sys.stderr)
            return None, ""
        model = registry.load_model(spec)
        name = spec.id
    model.eval()
    device = torch.device(args.device)

    def run(masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
        kw = {} if args.feather is None else {"feather": args.feather}
        if args.precision != "auto":  # older pipelines (a baseline checkout) lack the keyword
            kw["precision"] = args.precision
        return inpaint_image(masked, hole, model, device=device, work_size=args.work_size,
                             thin_width=args.thin_width, **kw)

    return run, name


def _grid_row(images: list[np.ndarray], width: int) -> np.ndarray:
    """The images side by side, each resized so the row is `width` px wide (2 px gaps)."""
    from PIL import Image

    gap = 2
    cell = (width - gap * (len(images) - 1)) // len(images)
    h, w = images[0].shape[:2]
    ch = max(1, round(h * cell / w))
    cells = [np.asarray(Image.fromarray(im).resize((cell, ch), Image.Resampling.LANCZOS)) for im in images]
    out = np.full((ch + gap, width, 3), 255, np.uint8)
    for i, c in enumerate(cells):
        out[:ch, i * (cell + gap): i * (cell + gap) + cell] = c
    return out


def zoom_box(gt: np.ndarray, box: int) -> tuple[int, int]:
    """(y, x) of the `box` px square hole of the zoom figure: the most textured position (see the module's
    docstring) that leaves ZOOM_MARGIN px of photo around it."""
    from benchmarks import _figures

    h, w = gt.shape[:2]
    m = ZOOM_MARGIN
    return _figures.busiest_window(_figures.luma(gt), (box, box), step=16, parts=3, bounds=(m, m, h - m, w - m))


def zoom(args: argparse.Namespace) -> int:
    """The --zoom figure (see the module's docstring)."""
    from benchmarks import _figures

    paths = _photos.image_paths(args.data)
    chosen = []
    for want in args.zoom_image or ZOOM_IMAGES:
        hits = [p for p in paths if p.name == want] or [p for p in paths if p.name.startswith(want)]
        if not hits:
            _figures.bad_input(PROG, f"no photo named '{want}' in {args.data}")
        chosen.append(hits[0])
    box, m = args.zoom_box, ZOOM_MARGIN
    photos = []
    for path in chosen:  # every photo checked before the model loads
        gt = _photos.load_rgb(path)
        h, w = gt.shape[:2]
        if min(h, w) < box + 2 * m:
            _figures.bad_input(PROG, f"'{path.name}' ({w}x{h}) is too small for a {box} px box and {m} px around it")
        photos.append((path, gt))
    methods: dict[str, Callable] = {}
    model_run, model_name = model_method(args)
    if model_run is None:
        _figures.bad_input(PROG, "no inpainting model is installed: the zoom figure needs one (--model or --weights)")
    methods[f"Restorer ({model_name})"] = model_run
    telea = optional_telea()
    if telea is not None:
        methods["OpenCV Telea r=5"] = telea
    else:
        print("OpenCV is not installed (pip install opencv-python-headless): the Telea column is left out",
              file=sys.stderr)
    rows = []
    for path, gt in photos:
        h, w = gt.shape[:2]
        y, x = zoom_box(gt, box)
        hole = np.zeros((h, w), bool)
        hole[y:y + box, x:x + box] = True
        masked = gt.copy()
        masked[hole] = 0
        cells = [np.where(hole[..., None], np.uint8(255), gt)]
        errors = []
        for name, run in methods.items():
            out = run(masked.copy(), hole)
            cells.append(out)
            errors.append(f"{name.split(' (')[0]} {np.abs(out.astype(np.float64) - gt)[hole].mean() / 2.55:.2f}")
        cells.append(gt)
        crops = [c[y - m:y + box + m, x - m:x + box + m] for c in cells]
        rows.append((f"{path.name}: {box} px box at x={x}, y={y}; hole L1 x100: {', '.join(errors)}", crops))
        print(f"{path.name}: box at x={x}, y={y}; hole L1 x100 {', '.join(errors)}", file=sys.stderr)
    labels = ["holes (white)", *methods, "original"]
    title = f"Fill: a {box} px square hole on texture, {m} px around it; 100% crops, not resampled"
    _figures.save_figure(_figures.labelled_grid(rows, labels, title=title), args.zoom)
    print(f"zoom ({' | '.join(labels)}) written to {args.zoom}", file=sys.stderr)
    return 0


def table(title: str, rows: dict[str, list[tuple[float, float, float]]], holes: list[float]) -> str:
    lines = [f"### {title} ({len(holes)} images, mean hole {100 * np.mean(holes):.1f}%)", "",
             "| method | PSNR (dB) | SSIM | hole L1 (x100) |", "| --- | ---: | ---: | ---: |"]
    for method, vals in rows.items():
        a = np.array(vals)
        lines.append(f"| {method} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.4f} | {a[:, 2].mean():.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="folder of ground-truth images (~1024 px)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--model", help="model id in the library (default: the default inpainting model)")
    src.add_argument("--weights", help="a Restorer inpainting model file")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work-size", type=int, default=WORK_SIZE, help="largest window side the model sees")
    ap.add_argument("--thin-width", type=int, default=THIN_WIDTH,
                    help=f"holes at most this wide (px) are filled at up to {THIN_WORK_SIZE} px; 0: --work-size for all")
    ap.add_argument("--feather", type=int, default=None,
                    help="px of inward seam blending in the pipeline (default: the pipeline's default)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="the pipeline's precision (auto: bf16 on CPUs with native bf16)")
    ap.add_argument("--grid", type=Path, help="also save an example grid (JPEG): per image, the holes in white, "
                    "each method's result and the original")
    ap.add_argument("--grid-images", type=int, default=6, help="images in the grid (the first ones)")
    ap.add_argument("--grid-width", type=int, default=1400, help="the grid's width in px")
    ap.add_argument("--output", type=Path, default=RESULTS, help=f"markdown results file (default {RESULTS})")
    ap.add_argument("--zoom", type=Path, help="instead of the scored run, save 100%% crops of a large box hole on "
                    "texture (JPEG or PNG): holes | Restorer | Telea | original, one row per --zoom-image")
    ap.add_argument("--zoom-image", action="append", default=[],
                    help="photo of --zoom, its file name or the start of it (repeatable; default "
                         f"{', '.join(ZOOM_IMAGES)})")
    ap.add_argument("--zoom-box", type=int, default=240, help="side of --zoom's square hole in px")
    args = ap.parse_args(argv)
    if args.zoom is not None:
        from benchmarks import _figures

        if _figures.image_format(args.zoom) not in ("JPEG", "PNG"):
            _figures.bad_input(PROG, f"--zoom must end in .jpg or .png, not '{args.zoom.name}'")
        if args.zoom_box < 16:
            _figures.bad_input(PROG, f"--zoom-box must be at least 16 px, got {args.zoom_box}")
        if not args.data.is_dir():
            _figures.bad_input(PROG, f"no such folder: {args.data}")
        return zoom(args)
    _need("skimage", "scikit-image")

    paths = _photos.image_paths(args.data, args.limit)
    if not paths:
        sys.exit(f"no images in {args.data}")
    methods: dict[str, Callable] = {}
    model_run, model_name = model_method(args)
    if model_run is not None:
        methods[f"Restorer ({model_name})"] = model_run
    methods["OpenCV Telea r=5"] = telea_method()

    per_group: dict[str, dict[str, list]] = {g: {m: [] for m in methods} for g in (*KINDS, "all")}
    holes: dict[str, list[float]] = {g: [] for g in (*KINDS, "all")}
    times = {m: 0.0 for m in methods}
    grid_rows: list[np.ndarray] = []
    index = 0
    for path in paths:
        gt = load_rgb(path)
        if gt is None:
            continue
        h, w = gt.shape[:2]
        hole = benchmark_mask(h, w, index, seed=0)
        group = KINDS[index % len(KINDS)]
        masked = gt.copy()
        masked[hole] = 0
        for g in (group, "all"):
            holes[g].append(float(hole.mean()))
        row = [np.where(hole[..., None], np.uint8(255), gt)]
        for name, run in methods.items():
            t0 = time.perf_counter()
            out = run(masked.copy(), hole)
            times[name] += time.perf_counter() - t0
            if out.shape != gt.shape or out.dtype != np.uint8:
                sys.exit(f"{name} returned {out.shape} {out.dtype} for {path}")
            row.append(out)
            s = scores(out, gt, hole)
            for g in (group, "all"):
                per_group[g][name].append(s)
        if args.grid and len(grid_rows) < args.grid_images:
            grid_rows.append(_grid_row([*row, gt], args.grid_width))
        index += 1
        print(f"[{index}/{len(paths)}] {path.name} {group} hole {100 * hole.mean():.1f}%", file=sys.stderr)
    if index == 0:
        sys.exit("no readable images")
    if args.grid and grid_rows:
        from PIL import Image

        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(grid_rows, 0)).save(args.grid, quality=82)
        print(f"grid ({' | '.join(['holes', *methods, 'original'])}) written to {args.grid}", file=sys.stderr)

    header = [
        "# Inpainting benchmark", "",
        f"Data: `{args.data}` ({index} images); masks: `benchmark_mask(h, w, i, seed=0)` (thin/medium/thick in turn); "
        "holes zeroed before inpainting; scores on the whole RGB image; hole L1 = mean |error| in the hole "
        "on a 0..1 scale x100.", "",
        f"Device: {args.device}; work size {args.work_size}; thin width {args.thin_width}; feather {args.feather if args.feather is not None else 'default'}; run {time.strftime('%Y-%m-%d %H:%M')}; "
        "seconds per image: " + ", ".join(f"{m} {t / index:.2f}" for m, t in times.items()), "",
    ]
    body = [table(g, per_group[g], holes[g]) for g in (*KINDS, "all") if holes[g]]
    write_results("\n".join(header) + "\n".join(body), args.output)
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
