"""The whole GPU part of training Restorer's shipped models, in ONE command (issue #11).

long: one driver (pack, check, measure, plan, train, evaluate, gate, hand back) kept in one file so
the GPU machine runs a single prepared script whose every step the CPU dry run exercises too.

Before the GPU call, on the developer's machine (the GPU machine receives only the working tree;
`../shared` stays behind), pack the data into the ignored folder `.gpu_data/` of the checkout:

    python scripts/gpu_session.py pack --train ../shared/datasets/photos-train \
        --train ../shared/datasets/extra-train --val ../shared/datasets/photos-val

Then ONE device call: `scripts/gpu_session.sh` (= `python3 scripts/gpu_session.py run --out $OUT`):

1. check the GPU (name, memory, a bf16 matrix product's TFLOP/s), torch/torchvision versions;
2. measure throughput briefly (`benchmarks/train_throughput.py --quick`, capped in time), and what
   `--gpus 1` through the elastic launcher costs against a plain run (`benchmarks/launcher_overhead.py`,
   one round of 12 s each, about 50 s with start-up; a one-off; issue #16's < 3 % target; `--launcher-s 0` skips);
3. plan shares (`recipes_shipped.plan_session`): every recipe starts at once as its own process,
   the models furthest from their bars run the whole window, the others stop earlier;
4. train: `scripts/train_shipped.py JOB` continuing the shipped weights (SIGTERM at the deadline:
   the trainers checkpoint, stop and export);
5. evaluate each candidate and the shipped model it would replace on photos-val with the
   benchmarks' protocols (SR: Pillow bicubic LR, or TARGETS.md's realistic LR, Y-PSNR after a
   `scale`-pixel border crop; restore-x1: PSNR against the clean photo, the degraded input as
   the baseline; inpainting: `benchmark_mask(h, w, i, seed=0)`, holes zeroed, the app's
   `inpaint_image`, PSNR over the image and hole L1; damage detection: the detect benchmark's scratch
   IoU and false marks; colorize: the mean a/b error of photos turned grey beside keeping them grey);
   the fast CPU models (issue #20) also against
   their reference models on the same images (x4: sr-x4-compact + 0.5 dB; x2: sr-x2-faithful;
   native x3: sr-x4-faithful's x4-then-downscale) and by CPU time per output megapixel, timed
   alike with 2 threads (`cpu_s_per_mpx`; x4 at most 1.1x sr-x4-compact's, x2/x3 at most half the
   faithful model's): `meets_bar` in the summary says which are fit to be the CPU default;
6. hand back under $OUT at most 7 model files of at most 16 MiB (only candidates that beat what
   is shipped, best gain first; a fast model that only improved on its previous self or on
   bicubic comes last, so it is continued next time) plus `summary.json`.

`run --cpu --tiny` is the dry run: tiny networks, tiny synthetic "shipped" weights, the same code
path on the CPU in about a minute (with `--data-root` pointing at any small folders).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from restorer.engine.training.recipes_shipped import (RECIPES, WEIGHTS_DIR, PlannedJob, gate,  # noqa: E402
                                                      gate_relative, get_recipe, plan_session, shipped_name)

log = logging.getLogger("gpu_session")

DEFAULT_JOBS = ("sr-x4-faithful", "sr-x2-faithful", "sr-x4-compact", "sr-x4-fast", "sr-x3-fast", "sr-x2-fast",
                "inpaint-photos", "sr-x4-photo", "sr-x4-compact-photo", "sr-x4-fast-photo", "sr-x2-photo",
                "sr-x4-photo-sharp", "restore-x1", "sr-x8-faithful", "latent-photos-64", "detect-damage",
                "colorize-photos")
# the dry run's default jobs: one of each code path (SR psnr, realistic continuation from another
# model, x1 with an adapted last layer, inpainting with the GAN phase, a native x3 fast model gated
# against a reference measured in the same run, damage detection, colorize); --job adds the others
TINY_JOBS = ("sr-x4-faithful", "sr-x4-photo", "restore-x1", "inpaint-photos", "sr-x3-fast", "detect-damage",
             "colorize-photos")
MAX_FILES = 8  # what the device tool hands back
MAX_FILE_BYTES = 16 * 2**20
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


# --------------------------------------------------------------------------- pack (CPU side)
def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def pack(train: list[Path], val: Path, out: Path, budget_mb: float, val_images: int = 40,
         first_share: float = 0.85) -> dict[str, Any]:
    """Copy the data the session needs into `out` (inside the checkout, ignored by git) within
    `budget_mb` (the device call carries 64 MiB in all and the tree takes about 40): the first
    `val_images` photos-val files as they are (the gate's protocol needs the very files; the
    sorted order is the benchmarks'), then the training folders re-encoded as WebP at the highest
    quality that fits: the first folder (photos, in every mix) gets up to `first_share` of the room,
    the later ones share what is left, as every n-th image if they do not fit whole."""
    from PIL import Image

    if out.exists():
        shutil.rmtree(out)
    (out / "val").mkdir(parents=True)
    used = 0
    for p in _images(val)[: val_images or None]:
        dst = out / "val" / p.relative_to(val)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
        used += dst.stat().st_size
    budget = int(budget_mb * 2**20) - used
    if budget <= 0:
        raise SystemExit(f"the validation images alone ({used / 2**20:.1f} MiB) exceed the budget")
    report: dict[str, Any] = {"val_images": len(list((out / "val").rglob("*.*"))), "val_mib": round(used / 2**20, 2),
                              "train": []}

    def encode(p: Path, q: int) -> bytes:
        with Image.open(p) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="WEBP", quality=q, method=4)
            return buf.getvalue()

    for k, folder in enumerate(train):
        paths = _images(folder)
        if not paths:
            continue
        room = int(budget * first_share) if k == 0 and len(train) > 1 else budget // max(1, len(train) - k)
        sample = paths[:: max(1, len(paths) // 30)]
        chosen_q, est = 70, 0.0
        for q in (95, 92, 90, 87, 85, 80, 75, 70):
            est = sum(len(encode(p, q)) for p in sample) * len(paths) / len(sample)
            chosen_q = q
            if est <= room or (k > 0 and q <= 85):  # a later folder would rather lose images than quality
                break
        step = max(1, math.ceil(est / max(room, 1)))
        dst_dir = out / f"train{k}"
        dst_dir.mkdir()
        size = n = 0
        for p in paths[::step]:
            blob = encode(p, chosen_q)
            if size + len(blob) > room:
                break
            (dst_dir / (p.stem + ".webp")).write_bytes(blob)
            size += len(blob)
            n += 1
        budget -= size
        report["train"].append({"folder": str(folder), "images": n, "of": len(paths), "webp_quality": chosen_q,
                                "mib": round(size / 2**20, 2)})
    (out / "PACK.json").write_text(json.dumps(report, indent=2))
    return report


def make_tiny_data(root: Path, train_images: int = 6, val_images: int = 2) -> Path:
    """A packed-data folder of small synthetic photos (the dry run's default: fast, no /work/shared)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub, n, (h, w) in (("train0", train_images, (96, 120)), ("train1", 2, (80, 80)), ("val", val_images, (100, 128))):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            img = np.stack([128 + 100 * np.sin(xx / (5 + i) + yy / 9), 128 + 90 * np.cos(yy / (4 + i)),
                            (xx * 2 + yy) % 256], -1) + rng.normal(0, 8, (h, w, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / sub / f"p{i}.png")
    return root


# --------------------------------------------------------------------------- GPU check
def check_device(cpu: bool) -> dict[str, Any]:
    import torch
    import torchvision

    from PIL import features

    info: dict[str, Any] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                            "python": sys.version.split()[0]}
    if not features.check("webp"):
        raise SystemExit("this Pillow cannot read WebP: the packed training images would all be skipped")
    if cpu:
        info["device"] = "cpu"
        return info
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --cpu for the dry run")
    props = torch.cuda.get_device_properties(0)
    info.update(device=props.name, memory_gib=round(props.total_memory / 2**30, 1), sms=props.multi_processor_count)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(2):
        a @ a
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    info["bf16_matmul_tflops"] = round(10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12, 1)
    del a
    torch.cuda.empty_cache()
    return info


# --------------------------------------------------------------------------- tiny stand-ins
def make_tiny_weights(weights_dir: Path, jobs: list[str]) -> None:
    """Tiny 'shipped' models with the dry run's tiny architectures, so continuation and gating run."""
    import torch

    from restorer.engine.archs import build_arch
    from restorer.engine.registry import MODEL_FORMAT
    from restorer.engine.training.common import atomic_torch_save
    from restorer.engine.training.recipes_shipped import TINY, build_config, generator_signature

    weights_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    ship = []
    for job in jobs:
        r = get_recipe(job)
        if r.task == "latent":
            continue
        ship.append(r.init[-1] if r.init else job)  # the nearest existing model (faithful/compact/inpaint)
        # the models a relative bar is measured against (the fast CPU models' references)
        refs = (*r.reference[-1:], *((r.time_reference,) if r.time_reference else ()))
        ship += [m for m in refs if m in RECIPES]
    for ship_as in dict.fromkeys(ship):
        r = get_recipe(ship_as)
        cfg = build_config(get_recipe(ship_as), "x", "x", 1.0, None, dict(TINY[r.task]), "cpu")
        arch, params = generator_signature(get_recipe(ship_as), cfg)
        net = build_arch(arch, params)
        payload = {"format": MODEL_FORMAT, "task": r.task, "arch": arch,
                   "params": params, "scale": params.get("scale", 1),
                   "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
                   "meta": {"iterations": 10, "train_seconds": 1.0, "device": "cpu"}}
        atomic_torch_save(payload, weights_dir / shipped_name(ship_as))


# --------------------------------------------------------------------------- training
def launch(jobs: list[PlannedJob], data: list[Path], runs: Path, weights_dir: Path, cpu: bool, tiny: bool,
           deadline: float, max_parallel: int, env: dict[str, str], startup_min: float = 0.5,
           kill_after_s: float = 45.0) -> dict[str, dict[str, Any]]:
    """Run the planned jobs (at most `max_parallel` at a time) until they finish or `deadline`
    (then SIGTERM: they checkpoint, stop and export; SIGKILL 45 s later)."""
    pending = list(jobs)
    running: dict[str, tuple[subprocess.Popen, Any, float]] = {}
    done: dict[str, dict[str, Any]] = {}
    term_sent: dict[str, float] = {}
    runs.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < max_parallel:
            pj = pending.pop(0)
            left_min = (deadline - time.time()) / 60.0
            minutes = max(0.05, min(pj.minutes, left_min) - startup_min)  # imports, data, compile come first
            cmd = [sys.executable, str(ROOT / "scripts" / "train_shipped.py"), pj.job, "--runs", str(runs),
                   "--minutes", f"{minutes:.3f}", "--weights-dir", str(weights_dir)]
            for d in data:
                cmd += ["--data", str(d)]
            if cpu:
                cmd += ["--device", "cpu"]
            if tiny:
                cmd += ["--tiny"]
            logf = open(runs / f"{pj.job}.log", "w", encoding="utf-8")
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
            running[pj.job] = (proc, logf, time.time())
            log.info("started %s for %.2f min (pid %d)", pj.job, minutes, proc.pid)
        time.sleep(0.5 if tiny else 5.0)
        now = time.time()
        for job, (proc, logf, t0) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                if now > deadline and job not in term_sent:
                    proc.send_signal(signal.SIGTERM)
                    term_sent[job] = now
                elif job in term_sent and now - term_sent[job] > kill_after_s:
                    proc.kill()
                continue
            logf.close()
            done[job] = {"rc": rc, "wall_s": round(now - t0, 1)}
            summ = runs / job / "summary.json"
            if summ.is_file():
                done[job].update(json.loads(summ.read_text()))
            if rc:
                done[job]["log_tail"] = (runs / f"{job}.log").read_text(errors="replace")[-600:]
            del running[job]
    return done


# --------------------------------------------------------------------------- evaluation
def _load(path: Path):
    from restorer.engine.archs import build_arch
    from restorer.engine.registry import read_model_file

    payload = read_model_file(path)
    net = build_arch(payload["arch"], payload["params"])
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return net.eval(), payload


def _val_images(folder: Path, limit: Optional[int]) -> list[tuple[str, np.ndarray]]:
    from PIL import Image, ImageOps

    out = []
    for p in _images(folder)[: limit or None]:
        with Image.open(p) as im:
            out.append((p.name, np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()))
    return out


def eval_sr(net, scale: int, images: list[tuple[str, np.ndarray]], realistic: bool, device,
            model_scale: Optional[int] = None) -> dict[str, float]:
    """Y-PSNR on the SR protocol (or the realistic one) through the app's upscale pipeline; also
    bicubic's figure (the baseline of a model that is not shipped yet). `model_scale` above `scale`
    (a x4 model measured at x3): the pipeline's model-then-downscale path, as the app runs it."""
    model_scale = model_scale or scale
    from PIL import Image

    from restorer.engine.imageio import ImageData
    from restorer.engine.metrics import sr_scores
    from restorer.engine.pipelines.upscale import upscale_image
    from restorer.engine.training.degradations import protocol_realistic_lr

    net = net.to(device)
    model_p, bic_p = [], []
    for i, (_name, arr) in enumerate(images):
        h, w = arr.shape[:2]
        hr = np.ascontiguousarray(arr[: h - h % scale, : w - w % scale])
        if realistic:
            lr = protocol_realistic_lr(hr, scale, i)
        else:
            lr = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // scale, hr.shape[0] // scale), Image.BICUBIC))
        img = ImageData(rgb=lr, alpha=None, exif=None, icc_profile=None, source_format=None)
        sr = upscale_image(img, net, model_scale, scale, device=device).image.rgb
        bic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        model_p.append(sr_scores(sr, hr, scale)[0])
        bic_p.append(sr_scores(bic, hr, scale)[0])
    return {"psnr_y": float(np.mean(model_p)), "bicubic_psnr_y": float(np.mean(bic_p)), "images": len(images)}


def eval_restore(net, images: list[tuple[str, np.ndarray]], device) -> dict[str, float]:
    """restore-x1: PSNR (RGB) against the clean photo of the output for the realistic protocol's
    x1 input (blur, noise 4, JPEG 60), and the input's own PSNR; `psnr` is the gain in dB."""
    import torch

    from restorer.engine.metrics import psnr
    from restorer.engine.training.degradations import protocol_realistic_lr

    net = net.to(device)
    gains, outs, ins = [], [], []
    for i, (_name, arr) in enumerate(images):
        deg = protocol_realistic_lr(arr, 1, i)
        x = torch.from_numpy(deg).permute(2, 0, 1)[None].float().div(255).to(device)
        with torch.no_grad():
            y = net(x).float().clamp(0, 1)
        out = (y[0] * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        p_out, p_in = psnr(out, arr), psnr(deg, arr)
        outs.append(p_out)
        ins.append(p_in)
        gains.append(p_out - p_in)
    return {"psnr": float(np.mean(gains)), "psnr_out": float(np.mean(outs)), "psnr_in": float(np.mean(ins)),
            "images": len(images)}


def eval_inpaint(net, images: list[tuple[str, np.ndarray]], device) -> dict[str, float]:
    """The inpainting benchmark's protocol (masks, zeroed holes, the app's pipeline): PSNR, hole L1."""
    from restorer.engine.pipelines.inpaint import inpaint_image
    from restorer.engine.training.masks import benchmark_mask

    net = net.to(device)
    ps, l1 = [], []
    for i, (_name, gt) in enumerate(images):
        h, w = gt.shape[:2]
        hole = benchmark_mask(h, w, i, seed=0)
        masked = gt.copy()
        masked[hole] = 0
        out = inpaint_image(masked, hole, net, device=device)
        diff = out.astype(np.float64) - gt.astype(np.float64)
        mse = float(np.mean(diff**2))
        ps.append(100.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse))
        l1.append(float(np.abs(diff)[hole].mean() / 255.0 * 100.0))
    return {"hole_l1": float(np.mean(l1)), "psnr": float(np.mean(ps)), "images": len(images)}


def eval_detect(net, images: list[tuple[str, np.ndarray]], device, size: int = 512) -> dict[str, float]:
    """benchmarks/detect_benchmark.py's protocol at a plain threshold 0.5 on centre crops of at most `size` px: mask IoU
    (and precision, recall) of scratches >= 2 px (its set 1, seeds 1000 + i), and the share of undamaged
    pixels marked (its set 3, seeds 3000 + i)."""
    import torch

    from restorer.engine.pipelines.detect import detect_damage
    from restorer.engine.training.damage import DamageParams, make_damage
    from restorer.engine.training.data import to_uint8_image
    from restorer.engine.training.detect import mask_scores

    net = net.to(device)
    preds, truths, marked = [], [], []
    for i, (_name, arr) in enumerate(images):
        h, w = arr.shape[:2]
        ch, cw = min(size, h), min(size, w)
        crop = np.ascontiguousarray(arr[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw])
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
        for s, params in ((1, DamageParams().only_scratches(2.0)), (3, DamageParams().undamaged())):
            res = make_damage(x, params, torch.Generator().manual_seed(1000 * s + i))
            # a plain 0.5 for both models (a low threshold at the seed's means no hysteresis, whatever the file says)
            mask = detect_damage(to_uint8_image(res.damaged[0]), net, threshold=0.5, low_threshold=0.5,
                                 device=device).mask
            if s == 1:
                preds.append(mask.ravel())
                truths.append(res.mask[0, 0].numpy().ravel())
            else:
                marked.append(mask.ravel())
    sc = mask_scores(np.concatenate(preds), np.concatenate(truths))
    return {"scratch_iou": sc["iou"], "scratch_precision": sc["precision"], "scratch_recall": sc["recall"],
            "clean_marked": float(np.concatenate(marked).mean()), "images": len(images)}


def eval_colorize(net, images: list[tuple[str, np.ndarray]], device) -> dict[str, float]:
    """benchmarks/colorize_benchmark.py's protocol: each photo turned grey (its L alone), colorized by the app's
    pipeline at full strength, its mean a/b error against the original beside keeping it grey, and the
    colourfulness of outputs and originals."""
    from restorer.engine.pipelines.colorize import colorize_image
    from restorer.engine.training.colorize import mean_colour_scores

    net = net.to(device)
    pairs = [(colorize_image(colorize_image(arr, net, strength=0.0), net, device=device), arr) for _n, arr in images]
    return dict(mean_colour_scores(pairs), images=len(images))


def cpu_s_per_mpx(net, model_scale: int, scale: int, side: int = 96, threads: int = 2, reps: int = 3) -> float:
    """CPU seconds per output megapixel of the app's upscale pipeline (default precision) on a
    `side` px photo-like LR image with `threads` torch threads (the 2-core reference machine's
    count): the best of `reps` runs after a warm-up. Used only as a ratio between two models
    timed alike in the same session."""
    import torch

    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines.upscale import upscale_image

    net = net.to("cpu")
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    lr = np.stack([128 + 90 * np.sin(xx / (3 + c) + yy / 7) for c in range(3)], -1).clip(0, 255).astype(np.uint8)
    img = ImageData(rgb=lr, alpha=None, exif=None, icc_profile=None, source_format=None)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        upscale_image(img, net, model_scale, scale, device=torch.device("cpu"))
        best = math.inf
        for _ in range(reps):
            t = time.perf_counter()
            upscale_image(img, net, model_scale, scale, device=torch.device("cpu"))
            best = min(best, time.perf_counter() - t)
    finally:
        torch.set_num_threads(before)
    return best / ((side * scale) ** 2 / 1e6)


def evaluate(job: str, model_file: Path, images, device, as_job: Optional[str] = None) -> dict[str, float]:
    """`model_file` on `job`'s protocol (its factor and degradation); `as_job` is the recipe whose
    protocol applies when that differs (a reference model measured at a fast model's factor)."""
    r = get_recipe(as_job or job)
    net, payload = _load(model_file)
    if r.evaluation in ("sr", "sr-realistic"):
        return eval_sr(net, r.scale if as_job else int(payload["scale"]), images, r.evaluation == "sr-realistic",
                       device, model_scale=int(payload["scale"]))
    if r.evaluation == "restore":
        return eval_restore(net, images, device)
    if r.evaluation == "inpaint":
        return eval_inpaint(net, images, device)
    if r.evaluation == "detect":
        return eval_detect(net, images, device)
    if r.evaluation == "colorize":
        return eval_colorize(net, images, device)
    return {}


def decide_relative(job: str, cand: dict[str, float], previous: Optional[dict[str, float]],
                    reference: Optional[dict[str, float]], reference_id: Optional[str],
                    cand_s_per_mpx: Optional[float], ref_s_per_mpx: Optional[float]) -> tuple[bool, bool, str]:
    """The gate of a fast CPU model: (hand back, meets the bar, why); see `gate_relative`."""
    return gate_relative(get_recipe(job), cand, previous, reference, reference_id, cand_s_per_mpx, ref_s_per_mpx)


def decide(job: str, cand: dict[str, float], shipped: Optional[dict[str, float]],
           start: Optional[dict[str, float]]) -> tuple[bool, str]:
    """The gate for one job: against the shipped model of that id; a model not shipped yet against
    the model it started from where that was measured on the same protocol, else its baseline
    (bicubic; the degraded input for restore-x1, whose metric is already the gain)."""
    r = get_recipe(job)
    if r.evaluation == "detect":  # the scratch IoU, and no more false marks than the bar or the shipped model
        ok, why = gate(r, cand, shipped) if shipped is not None else gate(r, cand, None, baseline=0.0)
        limit = max(0.01, (shipped or {}).get("clean_marked", 0.0))
        if ok and cand.get("clean_marked", 1.0) > limit:
            return False, f"{why}; but {100 * cand['clean_marked']:.2f}% of undamaged pixels marked"
        return ok, why
    if r.evaluation == "colorize":  # lower colour error than shipped (or than keeping grey), never garish
        ok, why = gate(r, cand, shipped) if shipped is not None else \
            gate(r, cand, None, baseline=cand.get("ab_error_grey"))
        if ok and cand.get("colourfulness", 0.0) > 1.1 * cand.get("colourfulness_original", 0.0):
            return False, f"{why}; but more colourful than the originals (garish)"
        return ok, why
    if shipped is not None:
        return gate(r, cand, shipped)
    if r.evaluation == "restore":
        return gate(r, cand, None, baseline=0.0)
    if job == "sr-x4-photo-sharp":  # a perceptual model: a fidelity floor, bicubic on the realistic protocol
        return gate(r, cand, None, baseline=cand.get("bicubic_psnr_y"))
    if start is not None and r.metric in start:
        return gate(r, cand, None, baseline=start[r.metric])
    return gate(r, cand, None, baseline=cand.get("bicubic_psnr_y"))


def gain(job: str, cand: dict[str, float], ref: Optional[dict[str, float]]) -> float:
    r = get_recipe(job)
    if ref is None or r.metric not in ref or r.metric not in cand:
        return float(cand.get(r.metric, 0.0)) if r.evaluation == "restore" else 0.0
    d = cand[r.metric] - ref[r.metric]
    return -d if r.lower_is_better else d


# --------------------------------------------------------------------------- the session
def run_session(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.time()
    if args.minutes is None:
        args.minutes = 2.0 if args.tiny else 9.2  # the device tool runs one command for at most 600 s
    if args.eval_minutes is None:  # (the fast models' references and CPU timings need about 30 s more)
        args.eval_minutes = 0.35 if args.tiny else 3.0
    if args.throughput_s is None:
        args.throughput_s = 0.3 if args.tiny else 5.0
    if args.launcher_s is None:  # two short runs, plain and --gpus 1, about 50 s in all on the GPU; a one-off:
        args.launcher_s = 0.0 if args.tiny else 12.0  # 0 once a session has measured it (docs/models.md)
    if args.max_parallel is None:  # all at once (the dry run too: a job started late would train nothing)
        args.max_parallel = 0
    deadline_all = t_start + args.minutes * 60
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.pt"), out / "summary.json"]:  # what an earlier session left there
        if old.is_file() and (old.name == "summary.json" or old.stem in RECIPES):
            old.unlink()
    summary: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "minutes": args.minutes,
                               "cpu": args.cpu, "tiny": args.tiny}
    summary["check"] = check_device(args.cpu)
    log.info("device: %s", summary["check"])
    device = "cpu" if args.cpu else "cuda"
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="restorer-session-"))
    env = dict(os.environ, RESTORER_DATA_DIR=str(tmp / "data"), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not args.cpu:
        env.setdefault("OMP_NUM_THREADS", "2")
    data_root = Path(args.data_root) if args.data_root else (
        make_tiny_data(tmp / "packed") if args.tiny else ROOT / ".gpu_data")
    train_dirs = sorted(p for p in data_root.glob("train*") if p.is_dir())
    val_dir = data_root / "val"
    if not train_dirs or not val_dir.is_dir():
        raise SystemExit(f"no packed data in {data_root} (run `gpu_session.py pack` first)")
    jobs = [j for j in (args.job or (TINY_JOBS if args.tiny else DEFAULT_JOBS)) if j in RECIPES]

    weights_dir = Path(args.weights_dir)
    if args.tiny:
        weights_dir = tmp / "weights"
        make_tiny_weights(weights_dir, jobs)

    # 2. throughput, briefly
    if args.throughput_s > 0:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--quick", "--json",
               str(tmp / "throughput.json"), "--seconds", str(args.throughput_s), "--recipe", "sr-x4-faithful"]
        cmd += ["--cpu", "--tiny"] if args.cpu else []  # (the jobs' own it/s give the all-together figures)
        try:
            subprocess.run(cmd, env=env, cwd=str(ROOT), timeout=args.throughput_s * 6 + 60, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            summary["throughput"] = json.loads((tmp / "throughput.json").read_text())
        except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
            summary["throughput"] = {"error": exc.__class__.__name__}

    # 2b. what the elastic launcher costs a one-GPU run (issue #16's target: < 3 %), before the jobs share the GPU
    if args.launcher_s > 0:
        lo_json = tmp / "launcher.json"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "launcher_overhead.py"), "--data", str(train_dirs[0]),
               "--device", device, "--seconds", str(args.launcher_s), "--rounds", "1", "--json", str(lo_json),
               "--out", str(tmp / "launcher.md")]
        cmd += ["--tiny"] if args.tiny else []
        try:
            proc = subprocess.run(cmd, env=env, cwd=str(ROOT), timeout=args.launcher_s * 4 + 120, check=False,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                summary["launcher"] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][-300:]}
            else:
                summary["launcher"] = json.loads(lo_json.read_text())
        except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
            summary["launcher"] = {"error": exc.__class__.__name__}
        log.info("launcher: %s", {k: summary["launcher"].get(k) for k in ("overhead", "met", "error")})

    # 3. plan: the training window ends early enough for evaluation and packing
    train_end = deadline_all - args.eval_minutes * 60
    window = (train_end - time.time()) / 60.0
    if window <= 0.05:
        raise SystemExit("no time left for training after the checks")
    plan = plan_session(jobs, window)
    summary["plan"] = [p.__dict__ for p in plan]
    log.info("plan: %s", [(p.job, p.minutes) for p in plan])

    # 4. train
    max_parallel = args.max_parallel or len(plan)
    trained = launch(plan, train_dirs, tmp / "runs", weights_dir, args.cpu, args.tiny, train_end, max_parallel, env,
                     startup_min=0.2 if args.tiny else 0.5, kill_after_s=45.0)
    summary["trained"] = trained

    # 5. evaluate against the shipped weights
    images = _val_images(val_dir, args.val_limit)
    dev = torch.device(device)
    results: dict[str, Any] = {}
    shipped_cache: dict[str, dict[str, float]] = {}
    ref_cache: dict[tuple[str, str], dict[str, float]] = {}
    cpu_times: dict[tuple[str, int], Optional[float]] = {}  # (model, factor) -> CPU s per output Mpx, timed alike

    def time_model(model_id: str, model_file: Path, scale: int) -> Optional[float]:
        if (model_id, scale) not in cpu_times:
            try:
                net, payload = _load(model_file)
                cpu_times[(model_id, scale)] = cpu_s_per_mpx(net, int(payload["scale"]), scale,
                                                             side=32 if args.tiny else 96, reps=1 if args.tiny else 3)
            except Exception:  # a timing must not lose the evaluation
                log.exception("timing %s failed", model_id)
                cpu_times[(model_id, scale)] = None
        return cpu_times[(model_id, scale)]

    for job in jobs:
        r = get_recipe(job)
        cand_file = tmp / "runs" / job / "model.pt"
        if r.evaluation is None or not cand_file.is_file():
            results[job] = {"handed_back": False, "why": "not gated" if r.evaluation is None else "no model"}
            continue
        if not args.tiny and time.time() > deadline_all - 20:  # (the dry run always evaluates: tiny and cheap)
            results[job] = {"handed_back": False, "why": "out of time before evaluation"}
            continue
        try:
            cand = evaluate(job, cand_file, images, dev)
            ship_path = weights_dir / shipped_name(job)
            shipped = None
            if ship_path.is_file():
                shipped = shipped_cache.setdefault(job, evaluate(job, ship_path, images, dev))
            start = None
            started_from = (trained.get(job, {}).get("start") or "")
            for sid in r.init[1:]:
                if sid in started_from and (weights_dir / shipped_name(sid)).is_file():
                    start = (evaluate(job, weights_dir / shipped_name(sid), images, dev)
                             if r.evaluation != "restore" else None)
                    break
            if r.reference:  # a fast CPU model: measured against reference models in this run
                ref_id = next((m for m in r.reference if (weights_dir / f"{m}.pt").is_file()), None)
                reference = None
                if ref_id is not None:
                    reference = ref_cache.setdefault((ref_id, job), evaluate(ref_id, weights_dir / f"{ref_id}.pt",
                                                                             images, dev, as_job=job))
                cand_s = time_model(job, cand_file, r.scale)
                ref_s = None
                if r.time_reference and (weights_dir / f"{r.time_reference}.pt").is_file():
                    ref_s = time_model(r.time_reference, weights_dir / f"{r.time_reference}.pt", r.scale)
                ok, meets, why = decide_relative(job, cand, shipped, reference, ref_id, cand_s, ref_s)
                results[job] = {"candidate": cand, "shipped": shipped, "reference": reference, "reference_id": ref_id,
                                "cpu_s_per_mpx": cand_s, "time_reference_s_per_mpx": ref_s,
                                "better": ok, "meets_bar": meets, "why": why,
                                "gain": gain(job, cand, shipped) if shipped else 0.0}
                continue
            ok, why = decide(job, cand, shipped, start)
            results[job] = {"candidate": cand, "shipped": shipped, "start_model": start, "better": ok, "why": why,
                            "gain": gain(job, cand, shipped or start)}
        except Exception as exc:  # one broken evaluation must not lose the others
            log.exception("evaluating %s failed", job)
            results[job] = {"handed_back": False, "why": f"evaluation failed: {exc.__class__.__name__}: {exc}"}
    summary["evaluation"] = results

    # 6. hand back the better candidates (best gain first), then the summary
    # a fast model that only made progress (below its bar) comes after every other candidate
    better = sorted((j for j, v in results.items() if v.get("better")),
                    key=lambda j: (results[j].get("meets_bar") is False, -results[j].get("gain", 0.0)))
    handed = []
    for job in better:
        src = tmp / "runs" / job / "model.pt"
        if len(handed) >= MAX_FILES - 1:
            results[job]["handed_back"] = False
            results[job]["why"] += "; no file slot left"
            continue
        if src.stat().st_size > MAX_FILE_BYTES:
            results[job]["handed_back"] = False
            results[job]["why"] += "; file over 16 MiB"
            continue
        shutil.copy2(src, out / f"{job}.pt")
        results[job]["handed_back"] = True
        handed.append(job)
    summary["handed_back"] = handed
    summary["wall_s"] = round(time.time() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    shutil.rmtree(tmp, ignore_errors=True)
    return summary


DEVICE_TREE_LIMIT = 64 * 2**20  # what one device call carries: the tracked tree, untracked files, carried paths


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of the files that travel with the working tree (tracked, plus untracked files git does not ignore)."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    total = 0
    for name in out.split(b"\0"):
        if name:
            try:
                total += (root / os.fsdecode(name)).stat().st_size
            except OSError:
                pass
    return total


def carry_budget_mb(margin_mb: float = 1.5) -> float:
    """MiB left for `.gpu_data` in one device call once the tree is counted."""
    return (DEVICE_TREE_LIMIT - tree_bytes()) / 2**20 - margin_mb


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="copy the data the session needs into the checkout (CPU side)")
    pk.add_argument("--train", action="append", type=Path, required=True)
    pk.add_argument("--val", type=Path, required=True)
    pk.add_argument("--out", type=Path, default=ROOT / ".gpu_data")
    pk.add_argument("--budget-mb", type=float, default=None,
                    help="room for data in the 64 MiB the device call carries (default: 64 MiB less the "
                         "tracked tree and a 1.5 MiB margin)")
    pk.add_argument("--val-images", type=int, default=40, help="photos-val images to gate on (the first N; 0: all)")
    rn = sub.add_parser("run", help="the GPU session (or, with --cpu --tiny, its dry run)")
    rn.add_argument("--out", default=os.environ.get("OUT", "out"))
    rn.add_argument("--data-root", default=None,
                    help="the packed data (default .gpu_data; with --tiny: small synthetic images)")
    rn.add_argument("--weights-dir", default=str(WEIGHTS_DIR))
    rn.add_argument("--minutes", type=float, default=None,
                    help="the whole session, checks to hand-back (default 9.2; --tiny: 2)")
    rn.add_argument("--eval-minutes", type=float, default=None, help="kept for evaluation (default 2.5; --tiny: 0.35)")
    rn.add_argument("--throughput-s", type=float, default=None, help="seconds per throughput measurement; 0: skip")
    rn.add_argument("--launcher-s", type=float, default=None,
                    help="seconds per run of the --gpus 1 launcher check (benchmarks/launcher_overhead.py, at least 8); "
                         "0: skip")
    rn.add_argument("--val-limit", type=int, default=None, help="evaluate on the first N packed val images only")
    rn.add_argument("--job", action="append", help="train only these recipes (repeatable)")
    rn.add_argument("--max-parallel", type=int, default=None, help="jobs at a time (0: all, the default)")
    rn.add_argument("--cpu", action="store_true")
    rn.add_argument("--tiny", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "pack":
        budget_mb = args.budget_mb if args.budget_mb is not None else carry_budget_mb()
        log.info("packing within %.1f MiB", budget_mb)
        print(json.dumps(pack(args.train, args.val, args.out, budget_mb, args.val_images), indent=2))
        return 0
    summary = run_session(args)
    print(json.dumps({k: summary[k] for k in ("check", "handed_back", "wall_s")}, default=str))
    for job, v in summary["evaluation"].items():
        print(f"{job}: {'HANDED BACK' if v.get('handed_back') else 'kept shipped'} - {v.get('why')}")
    if any(v.get("meets_bar") is not None for v in summary["evaluation"].values()):
        print("fast CPU models meeting their bar (fit to be the CPU default): "
              + (", ".join(j for j, v in summary["evaluation"].items() if v.get("meets_bar")) or "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
