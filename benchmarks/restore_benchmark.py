"""x1 clean-up quality and speed on a folder of photos (restore-x1, issue #12; protocol of shared TARGETS.md).

    python benchmarks/restore_benchmark.py --data ../shared/datasets/photos-val --model restore-x1 \
        [--weights FILE ...] [--limit N] [--no-clean] [--grid docs/images/restore-x1.jpg --grid-image 3]

Degraded input = TARGETS.md's realistic protocol at x1: Pillow GaussianBlur(radius 1), Gaussian noise
sigma 4 from numpy default_rng(1000 + index) (images in sorted order), rounded and clipped, Pillow
JPEG quality 60 (`data.protocol_realistic_lr(hr, 1, index)`). Each model cleans it through the app's
pipeline (`pipelines.clean.clean_image`: tiles, bf16 where the CPU has it natively); the table gives
PSNR (RGB and BT.601 luma, 1 px border cropped) of the input and of the output against the clean
photo, and the gain. "clean photos": the model run on the undegraded photo, PSNR of its output
against that photo (how much it changes a photo that needs no cleaning; higher is better, 40 dB is
about one level of 255 on average). Time: wall and process CPU seconds per megapixel of the
pipeline on the degraded inputs. `--grid` writes degraded | cleaned | original 100% crops of the
`--grid-image` photos (one row each) as a JPEG. `--first N --limit M` measures photos N..N+M-1 (their
protocol seeds unchanged) and `--json FILE` keeps the sums, so parallel parts can be joined with
`--combine FILE ...` into the table of the whole folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._photos import flat_photo_paths  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.imageio import ImageData  # noqa: E402
from restorer.engine.metrics import psnr, sr_scores  # noqa: E402
from restorer.engine.pipelines.clean import clean_image  # noqa: E402
from restorer.engine.training.degradations import protocol_realistic_lr  # noqa: E402


def photos(folder: Path, first: int, limit: int | None) -> list[tuple[int, Path]]:
    """(protocol index, path) in sorted order: the index seeds the protocol's noise."""
    files = list(enumerate(flat_photo_paths(folder)))
    files = files[first:]
    return files[:limit] if limit else files


def print_table(title: str, rows: dict) -> None:
    print(f"\n**{title}**\n")
    print("| model | input PSNR | output PSNR | gain (dB) | input / output Y-PSNR | gain Y (dB) | "
          "clean photos: PSNR of the output | wall s / Mpx | CPU s / Mpx |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        m = {k: float(np.mean(r[k])) if r[k] else float("nan") for k in ("in", "out", "in_y", "out_y", "clean")}
        print(f"| {label} | {m['in']:.2f} | {m['out']:.2f} | **{m['out'] - m['in']:+.2f}** | {m['in_y']:.2f} / "
              f"{m['out_y']:.2f} | {m['out_y'] - m['in_y']:+.2f} | {m['clean']:.2f} | {r['wall'] / max(r['mpx'], 1e-9):.2f} | "
              f"{r['cpu'] / max(r['mpx'], 1e-9):.2f} |")


def load(model: str):
    """(label, net) for a registry id or a model file."""
    if Path(model).is_file():
        payload = registry.read_model_file(Path(model))
        return f"{Path(model).parent.name}/{Path(model).name}", registry.build_and_load(payload, model).eval()
    return model, registry.load_model(model, task="sr")


def run(net, rgb: np.ndarray, precision: str) -> np.ndarray:
    img = ImageData(rgb=rgb, alpha=None, exif=None, icc_profile=None, source_format=None)
    return clean_image(img, net, precision=precision).rgb


def crop_row(parts: list[np.ndarray], side: int) -> np.ndarray:
    h, w = parts[0].shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    gap = np.full((min(side, h), 4, 3), 255, np.uint8)
    row = []
    for p in parts:
        row += [p[y:y + side, x:x + side], gap]
    return np.concatenate(row[:-1], axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--model", action="append", default=[], help="model id (repeatable)")
    ap.add_argument("--weights", action="append", default=[], help="model file (repeatable)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-clean", action="store_true", help="skip the clean-photo run")
    ap.add_argument("--clean-only", action="store_true", help="only the clean-photo run (no degraded inputs)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--grid", type=Path, default=None)
    ap.add_argument("--grid-image", type=int, action="append", default=[], help="index of a photo for the grid")
    ap.add_argument("--grid-side", type=int, default=240)
    ap.add_argument("--first", type=int, default=0, help="skip the first N photos (their indices are kept)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-photo figures here")
    ap.add_argument("--combine", type=Path, nargs="+", default=None, help="join --json files into one table")
    args = ap.parse_args(argv)
    if args.combine:
        parts = [json.loads(p.read_text()) for p in args.combine]
        rows: dict = {}
        for part in parts:
            for label, r in part["rows"].items():
                acc = rows.setdefault(label, {k: ([] if isinstance(v, list) else 0.0) for k, v in r.items()})
                for k, v in r.items():
                    acc[k] = acc[k] + v
        n = sum(len(next(iter(p["rows"].values()))["in"]) for p in parts)
        print_table(f"x1 clean-up on {parts[0]['data']} ({n} images; input: blur radius 1, noise sigma 4, JPEG q60; "
                    f"{len(parts)} parts run side by side)", rows)
        return 0
    if args.data is None:
        ap.error("--data is required")
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [load(m) for m in [*args.model, *args.weights]]
    if len({label for label, _ in models}) < len(models):  # two files of the same name: label them by path
        models = [(m, net) for m, (_label, net) in zip([*args.model, *args.weights], models)]
    if not models:
        ap.error("name at least one --model or --weights")
    files = photos(args.data, args.first, args.limit)
    rows = {label: {"in": [], "out": [], "in_y": [], "out_y": [], "clean": [], "wall": 0.0, "cpu": 0.0, "mpx": 0.0}
            for label, _ in models}
    grid_rows = []
    for i, f in files:
        hr = np.asarray(Image.open(f).convert("RGB"))
        deg = protocol_realistic_lr(hr, 1, i)
        for label, net in models:
            r = rows[label]
            if args.clean_only:
                r["clean"].append(psnr(run(net, hr, args.precision), hr))
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            out = run(net, deg, args.precision)
            r["wall"] += time.perf_counter() - t0
            r["cpu"] += time.process_time() - c0
            r["mpx"] += hr.shape[0] * hr.shape[1] / 1e6
            r["in"].append(psnr(deg, hr))
            r["out"].append(psnr(out, hr))
            r["in_y"].append(sr_scores(deg, hr, 1)[0])
            r["out_y"].append(sr_scores(out, hr, 1)[0])
            if not args.no_clean:
                r["clean"].append(psnr(run(net, hr, args.precision), hr))
            if args.grid and i in args.grid_image and label == models[0][0]:
                grid_rows.append(crop_row([deg, out, hr], args.grid_side))
        if args.clean_only:
            print(f"{i + 1} {f.name}: clean photo " + "; ".join(
                f"{lab} {rows[lab]['clean'][-1]:.2f} dB" for lab, _ in models), flush=True)
            continue
        print(f"{i + 1} {f.name}: " + "; ".join(
            f"{lab} {rows[lab]['in'][-1]:.2f} -> {rows[lab]['out'][-1]:.2f} dB" for lab, _ in models), flush=True)
    print_table(f"x1 clean-up on {args.data.name} ({len(files)} images; input: blur radius 1, noise sigma 4, JPEG q60; "
                f"precision {args.precision}, {torch.get_num_threads()} threads)", rows)
    if args.json:
        args.json.write_text(json.dumps({"data": args.data.name, "rows": rows}))
    if args.grid and grid_rows:
        side = min(g.shape[1] for g in grid_rows)
        sep = np.full((4, side, 3), 255, np.uint8)
        stack = []
        for g in grid_rows:
            stack += [g[:, :side], sep]
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(stack[:-1], axis=0)).save(args.grid, quality=92)
        print(f"\ngrid (degraded | cleaned | original, 100% crops): {args.grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
