"""One-step restore benchmark (issue #19): detect + fill on synthetic damage, scored against the undamaged photo.

Protocol (fixed; results are comparable between runs):

* images: the image files in --data (sorted by path, recursive; use photos-val, never a training folder),
  the first --limit of them, each centre-cropped to at most --size x --size px (as detect_benchmark.py);
* image number i of set s gets synthetic damage from ``restorer.engine.training.damage.make_damage`` with
  ``torch.Generator().manual_seed(5000 * s + i)``:
  1. *scratches*: ``DamageParams().only_scratches(2.0)``: 1-4 long scratches 2-8 px wide, nothing else;
  2. *all damage*: ``DamageParams(p_clean=0.0)``: scratches 1-8 px, hairs, cracks, creases, specks, blotches;
  each on a colour / grey / sepia, maybe faded, blurred, textured and grainy version of the photo;
* the reference is the *undamaged original*: the same photo with the same tone, blur, paper texture and grain
  but no damage (``DamageResult.clean``), so only the damage counts against a method;
* "restored" is ``restorer.engine.pipelines.restore.restore_photo`` (the app's and the CLI's code path) with
  the detect and fill steps only (no clean-up, no upscale), at --threshold (default: the detect model's own
  calibrated threshold(s), as the app) and --grow;
* "true-mask fill" (information: what a perfect detector would give) fills the true damage mask grown by the
  same --grow px with the same fill model;
* PSNR over the whole RGB image (0..255), the mean over images; "filled-mask IoU" / "damage covered" compare
  the mask that was filled with the true damage mask (pixel counts summed over the set); seconds are the
  restore's wall time per image on this machine.

Target (issue #19): the restored PSNR at least 3 dB above the damaged input's.

    python benchmarks/one_step_restore_benchmark.py --data DIR [--limit N] [--size PX] [--threshold T] [--grow N]
        [--example docs/images/restore_example.jpg] [--no-true-mask]
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

from benchmarks._photos import load_photos  # noqa: E402
from benchmarks._results import write_results  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.imageio import ImageData  # noqa: E402
from restorer.engine.metrics import psnr  # noqa: E402
from restorer.engine.pipelines.detect import model_low_threshold, model_threshold  # noqa: E402
from restorer.engine.pipelines.inpaint import inpaint_image  # noqa: E402
from restorer.engine.pipelines.restore import DEFAULT_GROW, RestoreOptions, restore_photo  # noqa: E402
from restorer.engine.training.damage import DamageParams, make_damage  # noqa: E402
from restorer.engine.training.data import to_uint8_image  # noqa: E402
from restorer.engine.training.detect import mask_scores  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "one_step_restore.md"
SETS = (("scratches >= 2 px", DamageParams().only_scratches(2.0)),
        ("all damage", DamageParams(p_clean=0.0)))


def grow_mask(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask
    t = torch.from_numpy(mask)[None, None].float()
    return torch.nn.functional.max_pool2d(t, 2 * px + 1, stride=1, padding=px)[0, 0].numpy() > 0


def side_by_side(damaged: np.ndarray, restored: np.ndarray, original: np.ndarray, width: int = 960) -> "object":
    """damaged | restored | original with labels, scaled to `width` px in all."""
    from PIL import Image, ImageDraw

    gap = 6
    h, w = damaged.shape[:2]
    strip = np.full((h + 22, 3 * w + 2 * gap, 3), 255, np.uint8)
    for k, (arr, label) in enumerate(((damaged, "damaged"), (restored, "restored (detect + fill)"),
                                      (original, "undamaged original"))):
        strip[22:, k * (w + gap):k * (w + gap) + w] = arr
    im = Image.fromarray(strip)
    draw = ImageDraw.Draw(im)
    for k, label in enumerate(("damaged", "restored (detect + fill)", "undamaged original")):
        draw.text((k * (w + gap) + 4, 5), label, fill=(0, 0, 0))
    scale = width / im.width
    return im.resize((width, max(1, round(im.height * scale))), Image.LANCZOS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threshold", type=float, default=None,
                    help="detection threshold (default: the detect model's own, hysteresis included, as the app)")
    ap.add_argument("--grow", type=int, default=DEFAULT_GROW)
    ap.add_argument("--detect-model")
    ap.add_argument("--inpaint-model")
    ap.add_argument("--no-true-mask", action="store_true", help="skip the true-mask fill (halves the time)")
    ap.add_argument("--example", type=Path, help="write damaged | restored | original of one image here (JPEG)")
    ap.add_argument("--example-index", type=int, default=0, help="which image of the scratch set (default 0)")
    ap.add_argument("--example-dir", type=Path, help="write damaged | restored | original of every image here")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    options = RestoreOptions(detect=True, fill=True, clean=False, scale=1, colorize=False, threshold=args.threshold,
                             grow=args.grow, detect_model=args.detect_model, inpaint_model=args.inpaint_model)
    inpaint_spec = (registry.get_spec(args.inpaint_model, task="inpaint") if args.inpaint_model
                    else registry.default_model("inpaint"))
    detect_spec = (registry.get_spec(args.detect_model, task="detect") if args.detect_model
                   else registry.default_model("detect"))
    models: dict = {}

    def load(spec):
        if spec.id not in models:
            models[spec.id] = registry.load_model(spec)
        return models[spec.id]

    if args.threshold is None:  # what the app and `restorer restore` use: the model's calibrated threshold(s)
        detector = load(detect_spec)
        low = model_low_threshold(detector)
        threshold_text = (f"the model's own threshold {model_threshold(detector):.2f}"
                          + (f" grown into {low:.2f}" if low is not None else ""))
    else:
        threshold_text = f"threshold {args.threshold}"
    crops = load_photos(args.data, args.limit, args.size)
    rows = []
    t_start = time.perf_counter()
    for s, (set_name, params) in enumerate(SETS, 1):
        p_dam, p_res, p_true, secs, filled, truths = [], [], [], [], [], []
        for i, (name, rgb) in enumerate(crops):
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            res = make_damage(x, params, torch.Generator().manual_seed(5000 * s + i))
            damaged, clean = to_uint8_image(res.damaged[0]), to_uint8_image(res.clean[0])
            truth = res.mask[0, 0].numpy()
            t0 = time.perf_counter()
            out = restore_photo(ImageData(rgb=damaged), options, device="cpu", loader=load)
            secs.append(time.perf_counter() - t0)
            restored = out.image.rgb
            mask = out.mask if out.mask is not None else np.zeros(truth.shape, bool)
            p_dam.append(psnr(damaged, clean))
            p_res.append(psnr(restored, clean))
            filled.append(mask.ravel())
            truths.append(truth.ravel())
            if not args.no_true_mask:
                tm = grow_mask(truth, args.grow)
                fixed = inpaint_image(damaged, tm, load(inpaint_spec)) if tm.any() else damaged
                p_true.append(psnr(fixed, clean))
            print(f"{set_name} {i:3d} {name}: damaged {p_dam[-1]:.2f} dB, restored {p_res[-1]:.2f} dB"
                  + (f", true-mask fill {p_true[-1]:.2f} dB" if p_true else "")
                  + f"; marked {mask.mean() * 100:.2f}% (true {truth.mean() * 100:.2f}%); {secs[-1]:.1f} s", flush=True)
            if args.example and s == 1 and i == args.example_index:
                args.example.parent.mkdir(parents=True, exist_ok=True)
                side_by_side(damaged, restored, clean).save(args.example, quality=88)
            if args.example_dir:
                args.example_dir.mkdir(parents=True, exist_ok=True)
                side_by_side(damaged, restored, clean).save(args.example_dir / f"set{s}_{i:02d}.jpg", quality=88)
        sc = mask_scores(np.concatenate(filled), np.concatenate(truths))
        gains = np.asarray(p_res) - np.asarray(p_dam)
        rows.append((set_name, float(np.mean(p_dam)), float(np.mean(p_res)),
                     float(np.mean(p_true)) if p_true else None, sc, float(np.mean(secs)),
                     float(np.mean(gains >= 3.0)), float(np.median(gains)), int(np.sum(gains < 0))))
    elapsed = time.perf_counter() - t_start
    lines = [f"# One-step restore (detect + fill) on {args.data.name} ({len(crops)} images, centre crops "
             f"<= {args.size} px)", "",
             f"detect model {detect_spec.id}, fill model {inpaint_spec.id}; {threshold_text}, mask grown "
             f"{args.grow} px; torch threads {torch.get_num_threads()}; {elapsed:.0f} s in all", "",
             "| set | damaged PSNR | restored PSNR | gain (of the means) | median gain | images with gain >= 3 dB "
             "| images made worse | true-mask fill PSNR | filled-mask IoU | damage covered | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for set_name, pd, pr, pt, sc, sec, share, median, worse in rows:
        lines.append(f"| {set_name} | {pd:.2f} | {pr:.2f} | **{pr - pd:+.2f}** | {median:+.2f} | {share * 100:.0f}% | "
                     f"{worse} of {len(crops)} | {'-' if pt is None else f'{pt:.2f}'} | {sc['iou']:.3f} | "
                     f"{sc['recall'] * 100:.1f}% | {sec:.2f} |")
    lines += ["", "Target: restored PSNR >= damaged PSNR + 3 dB."]
    write_results("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
