"""Super-resolution quality and speed on a folder of photos (protocol of shared TARGETS.md).

    python benchmarks/sr_benchmark.py --data ../shared/datasets/photos-val --scale 4 \
        --model sr-x4-faithful --model sr-x4-compact [--weights FILE ...] [--limit N] [--device cpu]

Any factor the pipeline makes (x2, native x3 with a x3 model such as `fast_sr`, x4, x8); a model of a
larger factor (a x4 model in the x3 table) runs as the app runs it, its factor then a downscale, and its
row says so. HR = the photo cropped so both sides divide by the scale; LR = Pillow bicubic (antialiased)
downscale; SR must have exactly the HR size. PSNR/SSIM on BT.601 luma, `scale` pixels cropped
from every border; SSIM with an 11x11 Gaussian window (sigma 1.5). Time per output megapixel
is measured in this run for every method, including a baseline with the seed SRGAN
generator's architecture (5 residual blocks, 64 channels, BatchNorm; random weights, speed
only), so speed ratios compare like with like. Writes a markdown table to stdout and to
benchmarks/results/sr_x{scale}.md.

One table per factor: per model PSNR/SSIM, CPU seconds per output megapixel (the pipeline's default
path: `--precision auto` is bf16 on CPUs with native bf16, see docs/models.md "CPU inference") and
GFLOP per output megapixel (torch.utils.flop_counter on a 64 px input, tile context not counted).
`--shipped` adds every shipped SR model that can make the factor; `--arch NAME` times an unshipped
architecture with random weights (speed and arithmetic only), e.g. `--arch fast_sr`.

`--degradation realistic` is TARGETS.md's real-photo protocol: LR = Pillow GaussianBlur(radius=1), Pillow
bicubic downscale, Gaussian noise sigma 4 (numpy default_rng(1000 + index), the images in sorted order,
rounded and clipped), Pillow JPEG quality 60 (`engine.training.degradations.protocol_realistic_lr`), scored against
the clean HR; the factor's faithful model (sr-xN-faithful) joins the table when installed, so a photo model is
read against both bicubic and the faithful model of the same run. Results go to sr_x{scale}_realistic.md.

    python benchmarks/sr_benchmark.py --data ../shared/datasets/photos-val --scale 4 --degradation realistic \
        --model sr-x4-photo

`--crops FILE` (JPEG or PNG) also saves 100% crops of the first `--crop-images` images of the run, one row per
image: the LR input enlarged with nearest neighbour (its JPEG blocks and noise stay visible), bicubic, every
scored model of the table in its order, and the original HR; `--crop-size` HR px square (a multiple of the
scale), at the window with the most gradient energy on a grid of a quarter crop (benchmarks/_figures.py).
Nothing in the crops is resampled, so compare them at 100% zoom.

    python benchmarks/sr_benchmark.py --data ../shared/datasets/photos-val --scale 4 --degradation realistic \
        --model sr-x4-compact --limit 4 --no-seed-timing --crops docs/images/sr-x4-realistic-crops.jpg --out /tmp/t.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _figures  # noqa: E402
from benchmarks._photos import flat_photo_paths  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.archs import build_arch  # noqa: E402
from restorer.engine.imageio import ImageData  # noqa: E402
from restorer.engine.metrics import sr_scores  # noqa: E402
from restorer.engine.pipelines.upscale import upscale_image  # noqa: E402

SEED_FIGURES = {4: (29.49, 0.7932), 2: (34.18, 0.9289)}


DEGRADATIONS = ("bicubic", "realistic")


def load_pairs(folder: Path, scale: int, limit: int | None, degradation: str = "bicubic"):
    """(name, HR, LR) in sorted file order; the realistic LR of image `index` (its place in that order)
    uses noise from default_rng(1000 + index), as TARGETS.md fixes it."""
    from restorer.engine.training.degradations import protocol_realistic_lr

    files = flat_photo_paths(folder)
    if limit:
        files = files[:limit]
    for index, f in enumerate(files):
        hr = Image.open(f).convert("RGB")
        w, h = hr.size
        hr = hr.crop((0, 0, w - w % scale, h - h % scale))
        if degradation == "realistic":
            hr_arr = np.asarray(hr)
            yield f.name, hr_arr, protocol_realistic_lr(hr_arr, scale, index)
            continue
        lr = hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
        yield f.name, np.asarray(hr), np.asarray(lr)


def run_model(model, model_scale, scale, lr, device, tile, precision="auto"):
    img = ImageData(rgb=lr, alpha=None, exif=None, icc_profile=None, source_format=None)
    return upscale_image(img, model, model_scale, scale, device=device, tile=tile, precision=precision).image.rgb


def gflop_per_out_mpx(model, model_scale: int, side: int = 64, out_scale: int | None = None) -> float:
    """GFLOP of the network per megapixel of the benchmark's output: a model of a larger factor than
    the table's (x4 for x3: the model, then a downscale) is charged its whole run per x`out_scale` pixel."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.rand(1, 3, side, side))
    return counter.get_total_flops() / (side * (out_scale or model_scale)) ** 2 * 1e6 / 1e9


def crop_window(hr: np.ndarray, size: int, scale: int) -> tuple[int, int, int]:
    """(y, x, side) of the square crop shown for `hr`: `size` px or the image's shorter side, rounded down to a
    multiple of `scale`, at a position (multiples of `scale`) with the most gradient energy."""
    side = min(size, hr.shape[0], hr.shape[1])
    side -= side % scale
    y, x = _figures.busiest_window(_figures.luma(hr), (side, side), step=max(scale, side // 4), align=scale)
    return y, x, side


def crop_row(hr: np.ndarray, lr: np.ndarray, outputs: list[np.ndarray], scale: int, size: int):
    """(row title suffix, cells): the LR input enlarged `scale` times with nearest neighbour, each output (bicubic
    first) and the HR, all the same window of the HR grid; `size` px square (white beyond a smaller image)."""
    y, x, side = crop_window(hr, size, scale)
    low = lr[y // scale:(y + side) // scale, x // scale:(x + side) // scale]
    nearest = np.repeat(np.repeat(low, scale, axis=0), scale, axis=1)

    def cell(a: np.ndarray) -> np.ndarray:
        out = np.full((size, size, 3), 255, np.uint8)
        out[:side, :side] = a[:side, :side]
        return out

    cells = [nearest, *(o[y:y + side, x:x + side] for o in outputs), hr[y:y + side, x:x + side]]
    return f"{side} px at x={x}, y={y}", [cell(c) for c in cells]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--model", action="append", default=[], help="registered model id (repeatable)")
    ap.add_argument("--weights", action="append", default=[], help="model file (repeatable)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tile", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-seed-timing", action="store_true")
    ap.add_argument("--shipped", action="store_true", help="every shipped SR model that can make the factor")
    ap.add_argument("--arch", action="append", default=[], help="unshipped architecture, random weights (timing)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS,
                    help="bicubic: the SR protocol; realistic: TARGETS.md's real-photo protocol (blur, bicubic, "
                         "noise sigma 4, JPEG q60), with the factor's faithful model beside the others")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--crops", type=Path, help="also save 100%% crops (JPEG or PNG): LR (nearest) | bicubic | "
                    "each model | original, one row per image")
    ap.add_argument("--crop-images", type=int, default=4, help="rows of --crops: the first N images of the run")
    ap.add_argument("--crop-size", type=int, default=192, help="side of each crop in HR px (a multiple of the scale)")
    args = ap.parse_args(argv)
    prog = "sr_benchmark"
    if args.crops is not None:
        if _figures.image_format(args.crops) not in ("JPEG", "PNG"):
            _figures.bad_input(prog, f"--crops must end in .jpg or .png, not '{args.crops.name}'")
        if args.crop_images < 1:
            _figures.bad_input(prog, f"--crop-images must be at least 1, got {args.crop_images}")
        if args.crop_size < 4 * args.scale or args.crop_size % args.scale:
            _figures.bad_input(prog, f"--crop-size must be a multiple of the scale ({args.scale}) and at least "
                                     f"{4 * args.scale}, got {args.crop_size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    s = args.scale

    methods: dict[str, tuple] = {}
    if args.shipped:
        args.model = [*args.model, *(m.id for m in registry.SHIPPED if m.task == "sr" and m.scale >= s
                                     and m.id not in args.model)]
    if args.degradation == "realistic":  # model vs bicubic vs the faithful model, in one run
        faithful = f"sr-x{s}-faithful"
        if faithful not in args.model and any(m.id == faithful for m in registry.all_models("sr")):
            args.model = [*args.model, faithful]
    for mid in args.model:
        spec = registry.get_spec(mid, task="sr")
        methods[mid] = (registry.load_model(spec), spec.scale)
    for wf in args.weights:
        payload = registry.read_model_file(Path(wf))
        net = build_arch(payload["arch"], payload["params"])
        net.load_state_dict(payload["state_dict"])
        methods[Path(wf).stem] = (net.eval(), payload["scale"])
    if not args.no_seed_timing and s in (2, 4, 8):
        seed = build_arch("srgan", {"scale": s, "num_blocks": 5, "channels": 64, "norm": "batch"}).eval()
        methods["seed-arch (timing only)"] = (seed, s)
    for name in args.arch:
        torch.manual_seed(0)
        methods[f"{name} x{s} (random weights, timing only)"] = (build_arch(name, {"scale": s}).eval(), s)
    for key, (_net, ms) in list(methods.items()):
        if ms != s:  # a larger factor, then a downscale: say so in the table
            methods[f"{key} (x{ms}, then resized to x{s})"] = methods.pop(key)

    scores: dict[str, list] = {"bicubic": []}
    times: dict[str, float] = {"bicubic": 0.0}
    for k in methods:
        scores[k], times[k] = [], 0.0
    out_mpx = 0.0
    n = 0
    crop_rows: list = []
    for net, ms in methods.values():  # warm-up: oneDNN builds its kernels on the first call
        run_model(net, ms, s, np.zeros((32, 32, 3), np.uint8), device, args.tile, args.precision)
    for name, hr, lr in load_pairs(args.data, s, args.limit, args.degradation):
        n += 1
        out_mpx += hr.shape[0] * hr.shape[1] / 1e6
        t = time.perf_counter()
        bic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        times["bicubic"] += time.perf_counter() - t
        scores["bicubic"].append(sr_scores(bic, hr, s))
        shown = [bic]
        for key, (net, ms) in methods.items():
            t = time.perf_counter()
            sr = run_model(net, ms, s, lr, device, args.tile, args.precision)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[key] += time.perf_counter() - t
            assert sr.shape == hr.shape, f"{key}: output {sr.shape} != HR {hr.shape}"
            if "timing only" not in key:
                scores[key].append(sr_scores(sr, hr, s))
                shown.append(sr)
        if args.crops is not None and len(crop_rows) < args.crop_images:
            where, cells = crop_row(hr, lr, shown, s, args.crop_size)
            crop_rows.append((f"{name}: {where}", cells))
        print(f"{n:3d} {name}: " + "  ".join(f"{k}={v[-1][0]:.2f}" for k, v in scores.items() if v), file=sys.stderr)

    from restorer.engine.devices import resolve_precision

    dtype = str(resolve_precision(device, args.precision)).replace("torch.", "")
    proto = ("realistic LR: blur r1, bicubic, noise sigma 4, JPEG q60" if args.degradation == "realistic"
             else "bicubic LR")
    lines = [f"## x{s} on {args.data.name} ({n} images, {proto}, device {args.device}, "
             f"{torch.get_num_threads()} threads, precision {args.precision}: {dtype})", "",
             "| method | PSNR-Y | SSIM-Y | vs bicubic | vs faithful | s per output Mpx | GFLOP per output Mpx |",
             "|---|---|---|---|---|---|---|"]
    gflops = {k: gflop_per_out_mpx(net, ms, out_scale=s) for k, (net, ms) in methods.items()}
    bic_psnr = float(np.mean([p for p, _ in scores["bicubic"]]))
    faithful_key = f"sr-x{s}-faithful"
    faithful_psnr = float(np.mean([p for p, _ in scores[faithful_key]])) if scores.get(faithful_key) else None
    for key in scores:
        spm = times[key] / out_mpx
        if scores[key]:
            p = float(np.mean([a for a, _ in scores[key]]))
            q = float(np.mean([b for _, b in scores[key]]))
            gf = f"{gflops[key]:.0f}" if key in gflops else "-"
            vs_f = f"{p - faithful_psnr:+.2f} dB" if faithful_psnr is not None else "-"
            lines.append(f"| {key} | {p:.2f} | {q:.4f} | {p - bic_psnr:+.2f} dB | {vs_f} | {spm:.3f} | {gf} |")
        else:
            lines.append(f"| {key} | - | - | - | - | {spm:.3f} | {gflops.get(key, 0):.0f} |")
    if s in SEED_FIGURES and args.degradation == "bicubic":  # published on the bicubic protocol only
        sp, sq = SEED_FIGURES[s]
        lines.append(f"| seed SRGAN (published figures, TARGETS.md) | {sp:.2f} | {sq:.4f} | "
                     f"{sp - 28.64 if s == 4 else sp - 33.04:+.2f} dB vs published bicubic | - | 4-9 | - |")
    suffix = "" if args.degradation == "bicubic" else f"_{args.degradation}"
    write_results("\n".join(lines) + "\n", args.out or Path(__file__).parent / "results" / f"sr_x{s}{suffix}.md")
    if args.crops is not None and crop_rows:
        labels = [f"LR input, nearest x{s}", "bicubic", *(k for k in methods if "timing only" not in k), "original HR"]
        title = f"x{s}, {proto}: 100% crops, not resampled"
        _figures.save_figure(_figures.labelled_grid(crop_rows, labels, title=title), args.crops)
        print(f"crops ({' | '.join(labels)}) written to {args.crops}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
