"""CPU inference paths per shipped model: seconds per output megapixel, peak RAM, GFLOP, share of peak.

long: one benchmark, one protocol: the subprocess table, the interleaved A/B and the quality check share the
photo, the masks, the model loading and the baseline trees; split they would only import each other.

    nice -n 19 python benchmarks/cpu_inference.py --data ../shared/datasets/photos-val \
        [--baseline-tree DIR] [--reference-tree DIR] [--size 320] [--repeats 3] [--tiles auto,96,128,192] \
        [--compile] [--quality-images 4] [--quality-only all|fill] [--threads N] [--interleaved N] [--graphs] \
        [--project-steps 40]

* `--interleaved` with `--graphs`: SR also as frozen TorchScript graphs (fp32, bf16; engine/frozen.py) and as a
  bf16-weights copy; `latent-photos-64` in `--models`: the explorer's projection (`--project-steps`);
  `--reference-tree`: Fill and projection also as a later checkout runs them (its own network code).

Every path runs in its own subprocess (a fresh interpreter: its peak resident memory, VmHWM, is
that path's alone), all in one run and in turn (baseline, path, baseline, path, ...) so a shared,
noisy machine slows all of them alike; ratios are against the baseline of the same run.

* SR models: an LR crop (`--size` px square) of the first photo, upscaled by the model's factor
  through `restorer.engine.pipelines.upscale.run_tiled`:
  - "today": the code of `--baseline-tree` (a checkout of the commit before this work: fp32,
    channels-last, one tile as large as memory allows, a full-resolution float accumulator);
  - "fp32" / "bf16": the current pipeline (tiles sized for the CPU, rows written out as they finish),
    bf16 by autocast only when the CPU has native bf16 (avx512_bf16 / AMX) unless `--force-bf16`;
  - "bf16 tile N": the tile-size sweep; "bf16 compiled": torch.compile (inductor) when `--compile`.
* Fill (inpainting): one brushed region (a 60 px wide stroke, about 2% of the photo) on the first
  photo at its full size (~1024 px), through `restorer.engine.pipelines.inpaint.inpaint_image`.
* `--interleaved N`: instead, all paths of a model in turn inside one process (the baseline tree's
  pipeline module imported beside the current one), N rounds, the median of the per-round time
  ratios: on a machine shared with other jobs this is the figure to trust; the subprocess table
  gives the peak memory of each path.
* Quality of reduced precision: on `--quality-images` photos-val images (SR protocol of TARGETS.md),
  Y-PSNR of fp32 and bf16 against the HR photo and the largest per-pixel difference (0..255) between
  the two outputs; for Fill the largest difference inside the hole and whether any pixel outside it changed.
* GFLOP per output Mpx from `torch.utils.flop_counter.FlopCounterMode` (a 64 px input, no tile
  context; the tile context adds the stated overhead); the share of peak uses the CPU's fp32 peak
  (cores x GHz x 64 FLOP/cycle: two 512-bit FMA pipes) or bf16 peak (twice that), `--peak-gflops`
  to override.

ONNX Runtime and OpenVINO are not installed in this project's environment, so only torch paths are
measured here (OpenVINO: benchmarks/openvino_probe.py, run from a scratch environment). int8
(`--int8-calib TRAIN_DIR`, a training photo folder, never photos-val): static post-training copies of
the SR models (`int8_model`: torch.ao FX graph mode, x86 backend, real quantized::conv2d kernels, no compiler at run time) in the interleaved
table, and `--quality-only int8` for their Y-PSNR against fp32 on the SR protocol. Measured, not used
by the app (docs/models.md "CPU inference": not faster enough than bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR_MODELS = ("sr-x4-compact", "sr-x4-faithful", "sr-x2-faithful", "sr-x8-faithful")
FILL_MODEL = "inpaint-photos"


# ----------------------------------------------------------------------------- worker (one path)
def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_photo(path: str, size: int) -> np.ndarray:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    if size:
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return np.asarray(im)


def _fill_mask(h: int, w: int) -> np.ndarray:
    """One brushed region: a 60 px wide diagonal stroke, 240 px long, centred (about 2% of 1024x800)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2, w / 2
    t = np.clip(((xx - cx) + (yy - cy)) / 2, -120, 120)
    d = np.hypot(xx - (cx + t), yy - (cy + t))
    return d <= 30


def worker(job: dict) -> dict:
    import torch

    tree = job.get("tree")
    if tree:
        sys.path.insert(0, tree)
    else:
        sys.path.insert(0, str(REPO))
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    from restorer.engine import registry

    spec, model = load(job["model"])
    cpu = torch.device("cpu")
    kw: dict = {}
    if not job.get("legacy"):
        kw["precision"] = job["precision"]
    if job["task"] == "sr":
        from restorer.engine.pipelines import upscale

        rgb = _load_photo(job["photo"], job["size"])
        if job.get("legacy"):
            run_input = rgb.astype(np.float32) / 255.0
        else:
            run_input = rgb
            kw["out_dtype"] = np.uint8
        if job.get("compile"):
            model = torch.compile(model)
        if job.get("tile"):
            kw["tile"] = int(job["tile"])

        def once():
            return upscale.run_tiled(run_input, model, spec.scale, device=cpu, **kw)

        t0 = time.perf_counter()
        out, tile, tiles = once()  # warm-up (oneDNN primitives, compilation)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(job["inner"]):
            t0 = time.perf_counter()
            out, tile, tiles = once()
            times.append(time.perf_counter() - t0)
        out_mpx = out.shape[0] * out.shape[1] / 1e6
        return {"s_per_mpx": min(times) / out_mpx, "warmup_s": warm, "tile": tile, "tiles": tiles,
                "peak_mb": _peak_rss_mb(), "out_mpx": out_mpx}
    from restorer.engine.pipelines.inpaint import inpaint_image

    rgb = _load_photo(job["photo"], 0)
    hole = _fill_mask(*rgb.shape[:2])
    masked = rgb.copy()
    masked[hole] = 0
    t0 = time.perf_counter()
    inpaint_image(masked, hole, model, device=cpu, **kw)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(job["inner"]):
        t0 = time.perf_counter()
        inpaint_image(masked, hole, model, device=cpu, **kw)
        times.append(time.perf_counter() - t0)
    return {"s_per_region": min(times), "warmup_s": warm, "peak_mb": _peak_rss_mb(),
            "hole_pct": 100 * float(hole.mean())}


def load(model_id: str):
    """A shipped model, or `arch:NAME:SCALE` for an unshipped architecture with random weights (speed only)."""
    from types import SimpleNamespace

    from restorer.engine import registry
    from restorer.engine.archs import build_arch

    if model_id.startswith("arch:"):
        _, name, scale = model_id.split(":")
        torch_seed()
        spec = SimpleNamespace(id=model_id, task="sr", scale=int(scale))
        return spec, build_arch(name, {"scale": int(scale)}).eval()
    spec = registry.get_spec(model_id)
    if spec.task == "latent":  # the explorer's paths load it themselves (generator + encoder)
        return spec, None
    return spec, registry.load_model(spec).eval()


def BF16Weights(model):
    """A bf16 copy of `model` (weights converted once, channels-last) that takes and returns float32."""
    import copy

    import torch
    from torch import nn

    class Wrapper(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = copy.deepcopy(net).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()
            self.receptive_margin = getattr(net, "receptive_margin", 24)

        def forward(self, x):
            return self.net(x.to(torch.bfloat16)).float()

        def float(self):  # run_tiled calls .float() on the model: keep the weights in bf16
            return self

    return Wrapper(model)


def torch_seed() -> None:
    import torch

    torch.manual_seed(0)


def run_job(job: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = job.get("tree") or str(REPO)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- in-process figures
def gflop_per_out_mpx(model, scale: int, side: int = 64) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, side, side)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops() / ((side * scale) ** 2) * 1e6 / 1e9


def fill_gflop(model, photo: str) -> float:
    """GFLOP of the model on the window the pipeline cuts for the benchmark's region."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from restorer.engine.pipelines.inpaint import WORK_SIZE, _fit, plan_windows

    rgb = _load_photo(photo, 0)
    hole = _fill_mask(*rgb.shape[:2])
    (win,) = plan_windows(hole)
    th, tw = _fit(win.y1 - win.y0, win.x1 - win.x0, WORK_SIZE)
    th, tw = -(-th // 8) * 8, -(-tw // 8) * 8
    m = torch.zeros(1, 1, th, tw)
    m[..., th // 3: 2 * th // 3, tw // 3: 2 * tw // 3] = 1
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.rand(1, 3, th, tw), m)
    return counter.get_total_flops() / 1e9


def cpu_peak_gflops(override: float | None) -> tuple[float, str]:
    if override:
        return override, f"{override:.0f} GFLOP/s (given)"
    cores = os.cpu_count() or 1
    mhz = 0.0
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            mhz = max(float(line.split(":")[1]) for line in fh if line.startswith("cpu MHz"))
    except (OSError, ValueError):
        mhz = 2500.0
    peak = cores * mhz / 1000 * 64
    return peak, f"{cores} cores x {mhz / 1000:.2f} GHz x 64 FLOP/cycle = {peak:.0f} GFLOP/s fp32 ({2 * peak:.0f} bf16)"


def quality_rows(data: Path, n: int, reference_tree: str | None = None, sr: bool = True) -> list[str]:
    """Y-PSNR of fp32, bf16 (eager autocast) and the default path against HR on the first `n` photos,
    and the default's largest difference from fp32; for Fill, hole L1 against the photo of the
    whole-window fp32 computation, the default fp32 one and the default (auto) one, and their largest
    differences."""
    import torch
    from PIL import Image

    from restorer.engine import registry
    from restorer.engine.imageio import ImageData
    from restorer.engine.metrics import sr_scores
    from restorer.engine.pipelines.inpaint import inpaint_image
    from restorer.engine.pipelines.upscale import upscale_image

    files = sorted(p for p in data.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:n]
    rows = ["| model | images | Y-PSNR fp32 | Y-PSNR bf16 (eager autocast) | Y-PSNR default (auto) | "
            "default - fp32 (dB) | max abs difference default vs fp32 (0..255) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"] if sr else []
    for mid in SR_MODELS if sr else ():
        spec = registry.get_spec(mid)
        model = registry.load_model(spec)
        s = spec.scale
        psnr: dict[str, list[float]] = {"fp32": [], "bf16": [], "auto": []}
        maxdiff = 0
        for f in files:
            hr = Image.open(f).convert("RGB")
            hr = hr.crop((0, 0, hr.width - hr.width % s, hr.height - hr.height % s))
            lr = np.asarray(hr.resize((hr.width // s, hr.height // s), Image.BICUBIC))
            outs = {}
            for prec in psnr:
                outs[prec] = upscale_image(ImageData(rgb=lr), model, s, s, precision=prec).image.rgb
                psnr[prec].append(sr_scores(outs[prec], np.asarray(hr), s)[0])
            maxdiff = max(maxdiff, int(np.abs(outs["fp32"].astype(int) - outs["auto"].astype(int)).max()))
        a, b, c = (float(np.mean(psnr[k])) for k in ("fp32", "bf16", "auto"))
        rows.append(f"| {mid} | {len(files)} | {a:.3f} | {b:.3f} | {c:.3f} | {c - a:+.3f} | {maxdiff} |")
    spec = registry.get_spec(FILL_MODEL)
    model = registry.load_model(spec)
    from restorer.engine.training.masks import benchmark_mask

    ref = None
    if reference_tree:
        arch = _legacy_module(reference_tree, "restorer/engine/archs/inpaint.py", "quality_ref_arch")
        ref_pipe = _legacy_module(reference_tree, "restorer/engine/pipelines/inpaint.py", "quality_ref_pipe")
        ref_net = arch.InpaintGenerator(**spec.params).eval()
        ref_net.load_state_dict(model.state_dict())
        ref = lambda img, m: ref_pipe.inpaint_image(img, m, ref_net)  # noqa: E731
    variants = {"whole": "fp32, whole window (no box)", "fp32": "fp32, hole box (--precision fp32)",
                "auto": "default (auto: bf16 here), hole box"}
    if ref is not None:
        variants = {"ref": f"reference tree ({Path(reference_tree).name}), its default", **variants}
    l1: dict[str, list[float]] = {k: [] for k in variants}
    psnr: dict[str, list[float]] = {k: [] for k in variants}
    worst_box, worst_auto, outside = 0, 0, 0
    for i, f in enumerate(files):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        hole = benchmark_mask(rgb.shape[0], rgb.shape[1], i, seed=0).astype(bool)  # thin, medium, thick in turn
        masked = rgb.copy()
        masked[hole] = 0
        outs = {}
        if ref is not None:
            outs["ref"] = ref(masked, hole)
        model.crop_to_hole = False
        try:
            outs["whole"] = inpaint_image(masked, hole, model, precision="fp32")
        finally:
            model.crop_to_hole = True
        outs["fp32"] = inpaint_image(masked, hole, model, precision="fp32")
        outs["auto"] = inpaint_image(masked, hole, model)
        for k, o in outs.items():
            err = o.astype(float) - rgb.astype(float)
            l1[k].append(100 * float(np.abs(err[hole]).mean()) / 255)
            psnr[k].append(10 * np.log10(255 ** 2 / max(1e-12, float((err ** 2).mean()))))
        worst_box = max(worst_box, int(np.abs(outs["whole"].astype(int) - outs["fp32"].astype(int)).max()))
        worst_auto = max(worst_auto, int(np.abs(outs["fp32"].astype(int) - outs["auto"].astype(int)).max()))
        outside += int(np.count_nonzero(np.any(outs["auto"] != masked, axis=-1) & ~hole))
    rows += ["", f"Fill on the first {len(files)} images with inpaint_benchmark.py's masks (benchmark_mask, seed 0: "
             "thin, medium, thick in turn); hole L1 x100 and whole-image PSNR against the photo:", "",
             "| Fill path | images | hole L1 x100 | PSNR (dB) |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| {name} | {len(files)} | {np.mean(l1[k]):.3f} | {np.mean(psnr[k]):.3f} |" for k, name in variants.items()]
    rows += ["", f"Largest difference in the hole (0..255): hole box vs whole window (fp32) {worst_box}; default vs "
             f"fp32 {worst_auto}. Pixels changed outside the hole by the default path: {outside}."]
    del torch
    return rows


# ----------------------------------------------------------------------------- int8 (static post-training)
INT8_VARIANTS = {
    "int8": "int8 convs; PReLU, first and last conv fp32",
    "int8-last": "int8 convs incl. the last; PReLU, first conv fp32",
    "int8-all": "int8 convs incl. the last, int8 PReLU (quantized::prelu); first conv fp32",
}


def calibration_crops(folder: Path, scale: int, n: int = 8, side: int = 64, seed: int = 0) -> list:
    """`n` LR crops (`side` px, bicubic from HR crops of side x scale) of random training photos."""
    import torch
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    out = []
    for f in rng.choice(files, n, replace=False):
        im = Image.open(f).convert("RGB")
        hs = side * scale
        x0, y0 = rng.integers(0, im.width - hs + 1), rng.integers(0, im.height - hs + 1)
        im = im.crop((x0, y0, x0 + hs, y0 + hs)).resize((side, side), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im).astype(np.float32) / 255).permute(2, 0, 1)[None])
    return out


def int8_model(model, calib: list, variant: str = "int8"):
    """Static post-training int8 copy of an SR network: torch.ao FX graph mode (`prepare_fx` /
    `convert_fx`, x86 backend: fbgemm's quantized::conv2d, VNNI), weights per-channel symmetric int8,
    activations per-tensor uint8 from MinMax observers over `calib`. The first conv, the image skip
    (bicubic/bilinear), the final add and the clamp stay fp32; "int8" also keeps the last conv and every
    PReLU in fp32 (quantized::prelu is off by 2-3 steps from its own reference and the errors add up
    to 31-35 dB against fp32), "int8-last" quantises the last conv, "int8-all" also the PReLUs.
    Takes and returns float tensors; run it with precision "fp32" (no autocast)."""
    import copy
    import operator
    import warnings

    import torch
    from torch import nn
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver, QConfig, QConfigMapping
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    class FloatPReLU(nn.Module):  # a leaf FX does not quantise: dequantize -> prelu in fp32 -> quantize
        def __init__(self, p: nn.PReLU):
            super().__init__()
            self.weight = p.weight

        def forward(self, x):
            return torch.nn.functional.prelu(x, self.weight)

    def swap(net):
        for name, mod in list(net.named_children()):
            if isinstance(mod, nn.PReLU):
                setattr(net, name, FloatPReLU(mod))
            else:
                swap(mod)

    torch.backends.quantized.engine = "x86"
    act = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=False)  # VNNI: no 7-bit workaround
    qc = QConfig(activation=act, weight=PerChannelMinMaxObserver.with_args(
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    qprelu = QConfig(activation=act, weight=MinMaxObserver.with_args(dtype=torch.qint8,
                                                                     qscheme=torch.per_tensor_symmetric))
    mapping = (QConfigMapping().set_global(qc).set_object_type(nn.PReLU, qprelu)
               .set_object_type(torch.nn.functional.interpolate, None).set_object_type("clamp", None))
    net = copy.deepcopy(model).float().eval()
    if hasattr(net, "head"):  # SRGANGenerator: head conv+PReLU, tail conv, out + bicubic (the 2nd add)
        mapping = mapping.set_module_name("head", None).set_module_name_object_type_order("", operator.add, 1, None)
        last = "tail"
    else:  # CompactSR: body[0] first conv, body[-1] last conv, shuffle(body) + bilinear (the 1st add)
        mapping = (mapping.set_module_name("body.0", None).set_module_name("shuffle", None)
                   .set_module_name_object_type_order("", operator.add, 0, None))
        last = f"body.{len(net.body) - 1}"
    if variant == "int8":
        mapping = mapping.set_module_name(last, None)
    custom = None
    if variant != "int8-all":
        swap(net)
        custom = PrepareCustomConfig().set_non_traceable_module_classes([FloatPReLU])
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.ao.quantization and quantized tensors are marked deprecated
        prepared = prepare_fx(net, mapping, (calib[0],), prepare_custom_config=custom)
        for x in calib:
            prepared(x)
        q = convert_fx(prepared)
    q.receptive_margin = getattr(model, "receptive_margin", 24)
    return q


def int8_quality_rows(data: Path, n: int, calib_dir: Path, models: list[str], variants: list[str]) -> list[str]:
    """SR protocol (bicubic LR of the HR photo, Y-PSNR with the border cropped) on the first `n` photos:
    fp32, bf16 autocast and each int8 copy (calibrated on `calib_dir`), the difference from fp32 and the
    largest per-pixel difference from the fp32 output (0..255)."""
    from PIL import Image

    from restorer.engine import registry
    from restorer.engine.imageio import ImageData
    from restorer.engine.metrics import sr_scores
    from restorer.engine.pipelines.upscale import upscale_image

    files = sorted(p for p in data.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:n]
    rows = ["| model | path | images | Y-PSNR | minus fp32 (dB) | max abs difference vs fp32 (0..255) |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    for mid in models:
        spec = registry.get_spec(mid)
        model = registry.load_model(spec).eval()
        s = spec.scale
        calib = calibration_crops(calib_dir, s)
        nets = {"fp32": (model, "fp32"), "bf16": (model, "bf16")}
        nets.update({v: (int8_model(model, calib, v), "fp32") for v in variants})
        psnr: dict[str, list[float]] = {k: [] for k in nets}
        worst = {k: 0 for k in nets}
        for f in files:
            hr = Image.open(f).convert("RGB")
            hr = hr.crop((0, 0, hr.width - hr.width % s, hr.height - hr.height % s))
            lr = np.asarray(hr.resize((hr.width // s, hr.height // s), Image.BICUBIC))
            outs = {k: upscale_image(ImageData(rgb=lr), net, s, s, precision=prec).image.rgb
                    for k, (net, prec) in nets.items()}
            for k, o in outs.items():
                psnr[k].append(sr_scores(o, np.asarray(hr), s)[0])
                worst[k] = max(worst[k], int(np.abs(o.astype(int) - outs["fp32"].astype(int)).max()))
            print(f"[int8 quality {mid}] {f.name}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in psnr.items()),
                  file=sys.stderr, flush=True)
        base = float(np.mean(psnr["fp32"]))
        for k in nets:
            m = float(np.mean(psnr[k]))
            rows.append(f"| {mid} | {k} | {len(files)} | {m:.3f} | {m - base:+.3f} | {worst[k]} |")
    return rows


# ----------------------------------------------------------------------------- interleaved A/B (one process)
def _legacy_module(tree: str, rel: str, name: str):
    """The baseline tree's version of one pipeline module, imported beside the current one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, str(Path(tree) / rel))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def tree_fill(tree: str, tag: str, spec, model, masked: np.ndarray, hole: np.ndarray):
    """Fill as another checkout runs it: that tree's network code (same weights) and pipeline, its defaults."""
    arch = _legacy_module(tree, "restorer/engine/archs/inpaint.py", f"{tag}_inpaint_arch")
    pipe = _legacy_module(tree, "restorer/engine/pipelines/inpaint.py", f"{tag}_inpaint")
    net = arch.InpaintGenerator(**spec.params).eval()
    net.load_state_dict(model.state_dict())
    return lambda: pipe.inpaint_image(masked, hole, net)


def interleaved_rows(args: argparse.Namespace, photo: str, models: list[str], bf16: bool) -> list[str]:
    """Paths of one model run in turn in this process, `args.interleaved` rounds; the median of the
    per-round ratios against the first path is robust to a shared machine's drifting speed."""
    import torch

    from restorer.engine.pipelines import inpaint as fill_pipe
    from restorer.engine.pipelines import upscale

    cpu = torch.device("cpu")
    legacy_up = None
    if args.baseline_tree:
        legacy_up = _legacy_module(args.baseline_tree, "restorer/engine/pipelines/upscale.py", "legacy_upscale")
    rows = ["| model | path | median time ratio vs first path (per-round ratios) | fastest s per unit |",
            "| --- | --- | --- | ---: |"]
    for mid in models:
        spec, model = load(mid)
        paths: list[tuple[str, object]] = []
        if spec.task == "latent":  # the explorer's projection of the photo (centre crop) into the latent space
            from PIL import Image

            from restorer.engine.pipelines import latent as latent_pipe

            rgb = np.asarray(Image.open(photo).convert("RGB"))
            unit, steps = 1.0, args.project_steps
            current = latent_pipe.LatentModel.load(mid, "cpu")
            if args.reference_tree:  # that tree's latent.py with its own model object (its layout untouched)
                ref_latent = _legacy_module(args.reference_tree, "restorer/engine/pipelines/latent.py",
                                            "reference_latent")
                ref_model = ref_latent.LatentModel.load(mid, "cpu")
                paths.append((f"reference tree ({Path(args.reference_tree).name}), {steps} steps",
                              lambda: ref_latent.project(ref_model, rgb, steps=steps)))
            paths.append((f"fp32 channels-last, {steps} steps",
                          lambda: latent_pipe.project(current, rgb, steps=steps, precision="fp32")))
            paths.append((f"default (auto: bf16 where native, channels-last), {steps} steps",
                          lambda: latent_pipe.project(current, rgb, steps=steps)))
        elif spec.task == "sr":
            size = args.size if spec.scale <= 4 else args.size // 2
            rgb = _load_photo(photo, size)
            unit = (size * spec.scale) ** 2 / 1e6
            if legacy_up is not None and not mid.startswith("arch:"):
                f01 = rgb.astype(np.float32) / 255
                paths.append(("today (fp32, one big tile)", lambda: legacy_up.run_tiled(f01, model, spec.scale, device=cpu)))
            paths.append(("fp32, CPU tiles", lambda: upscale.run_tiled(rgb, model, spec.scale, device=cpu, precision="fp32",
                                                                      out_dtype=np.uint8)))
            if args.graphs:
                paths.append(("fp32 frozen graph, CPU tiles", lambda: upscale.run_tiled(
                    rgb, model, spec.scale, device=cpu, precision="fp32", out_dtype=np.uint8, graph=True)))
            if bf16:
                paths.append(("bf16, CPU tiles", lambda: upscale.run_tiled(rgb, model, spec.scale, device=cpu,
                                                                          precision="bf16", out_dtype=np.uint8,
                                                                          graph=False)))
                if args.graphs:
                    bf16_net = BF16Weights(model)
                    paths.append(("bf16 weights (eager, no autocast), CPU tiles", lambda: upscale.run_tiled(
                        rgb, bf16_net, spec.scale, device=cpu, precision="fp32", out_dtype=np.uint8, graph=False)))
                    paths.append(("bf16 frozen graph, CPU tiles", lambda: upscale.run_tiled(
                        rgb, model, spec.scale, device=cpu, precision="bf16", out_dtype=np.uint8, graph=True)))
            if args.int8_calib:
                calib = calibration_crops(args.int8_calib, spec.scale)
                for variant in args.int8_variants.split(","):
                    t0 = time.perf_counter()
                    qnet = int8_model(model, calib, variant)
                    print(f"[{mid}] {variant} built in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
                    paths.append((f"{variant}: {INT8_VARIANTS[variant]}", lambda q=qnet: upscale.run_tiled(
                        rgb, q, spec.scale, device=cpu, precision="fp32", out_dtype=np.uint8, graph=False)))
            paths.append(("default (precision auto)", lambda: upscale.run_tiled(
                rgb, model, spec.scale, device=cpu, out_dtype=np.uint8)))
        else:
            rgb = _load_photo(photo, 0)
            hole = _fill_mask(*rgb.shape[:2])
            masked = rgb.copy()
            masked[hole] = 0
            unit = 1.0

            def full_decoders(fn):
                def run():
                    model.crop_to_hole = False  # this morning's code: attention subset, decoders on the window
                    try:
                        return fn()
                    finally:
                        model.crop_to_hole = True
                return run

            if args.baseline_tree:
                paths.append(("today (fp32, full attention)", tree_fill(args.baseline_tree, "baseline", spec, model,
                                                                       masked, hole)))
            if args.reference_tree:  # a second, later baseline
                paths.append((f"reference tree ({Path(args.reference_tree).name}, its default path)",
                              tree_fill(args.reference_tree, "reference", spec, model, masked, hole)))
            paths.append(("fp32: hole box, attention margin 7, channels-last",
                          lambda: fill_pipe.inpaint_image(masked, hole, model, device=cpu, precision="fp32")))
            if bf16:
                paths.append(("bf16, no box (whole window; attention margin 7, channels-last)",
                              full_decoders(lambda: fill_pipe.inpaint_image(masked, hole, model, device=cpu,
                                                                            precision="bf16"))))
                paths.append(("bf16: hole box, attention margin 7, channels-last (default)",
                              lambda: fill_pipe.inpaint_image(masked, hole, model, device=cpu, precision="bf16")))
        times: dict[str, list[float]] = {name: [] for name, _ in paths}
        import contextlib

        # the projection needs autograd (gradients with respect to the latent): no inference mode there
        with torch.inference_mode() if spec.task != "latent" else contextlib.nullcontext():
            for _, fn in paths:
                fn()  # warm-up
            for rnd in range(args.interleaved):
                for name, fn in paths:
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
                print(f"[interleaved {mid} round {rnd + 1}] " + ", ".join(f"{k}: {v[-1]:.2f}s" for k, v in times.items()),
                      file=sys.stderr, flush=True)
        first = times[paths[0][0]]
        for name, _ in paths:
            ratios = sorted(a / b for a, b in zip(first, times[name]))
            med = ratios[len(ratios) // 2]
            per = " ".join(f"{r:.2f}" for r in ratios)
            label = {"sr": "s / output Mpx", "latent": "s / projection"}.get(spec.task, "s / region")
            rows.append(f"| {mid} | {name} | **{med:.2f}x** ({per}) | {min(times[name]) / unit:.2f} {label} |")
    return rows


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help="photos-val folder (the first photo is timed)")
    ap.add_argument("--baseline-tree", help="a checkout of the code before this work ('today' path)")
    ap.add_argument("--models", default=",".join((*SR_MODELS, "arch:fast_sr:4", "arch:fast_sr:2", FILL_MODEL)),
                    help="shipped model ids, or arch:NAME:SCALE (random weights: speed only)")
    ap.add_argument("--size", type=int, default=320, help="LR crop side for the SR timings")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of all paths (in turn)")
    ap.add_argument("--inner", type=int, default=1, help="timed runs inside each subprocess (min taken)")
    ap.add_argument("--tiles", default="auto", help="bf16 tile sweep, e.g. auto,96,128,192")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--force-bf16", action="store_true", help="time bf16 even without native support")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    ap.add_argument("--quality-images", type=int, default=4)
    ap.add_argument("--interleaved", type=int, default=0,
                    help="instead: N rounds of every path in turn in one process, median ratios (no peak RAM)")
    ap.add_argument("--reference-tree", help="interleaved Fill: also a later checkout's network and pipeline "
                                             "(its default path), e.g. the code before this round of work")
    ap.add_argument("--quality-only", choices=["all", "fill", "int8"],
                    help="only the quality check on --quality-images photos (fill: Fill only)")
    ap.add_argument("--project-steps", type=int, default=40,
                    help="interleaved latent model (e.g. latent-photos-64): projection steps per run")
    ap.add_argument("--int8-calib", type=Path,
                    help="a training photo folder (never photos-val): also time/check static int8 copies of the SR "
                         "models calibrated on 8 of its crops")
    ap.add_argument("--int8-variants", default="int8,int8-last,int8-all", help="which int8 copies (see int8_model)")
    ap.add_argument("--graphs", action="store_true",
                    help="interleaved: also the frozen TorchScript graphs (fp32, bf16) and a bf16-weights copy")
    ap.add_argument("--peak-gflops", type=float)
    ap.add_argument("--output", type=Path, help="also write the markdown here")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not args.data:
        ap.error("--data is required")
    sys.path.insert(0, str(REPO))
    import torch

    from restorer.engine.devices import cpu_has_native_bf16
    from restorer.engine.pipelines.upscale import cpu_tile

    photo = str(sorted(p for p in args.data.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[0])
    native = cpu_has_native_bf16()
    bf16 = native or args.force_bf16
    peak, peak_text = cpu_peak_gflops(args.peak_gflops)
    models = [m for m in args.models.split(",") if m]
    base = {"photo": photo, "size": args.size, "inner": args.inner, "threads": args.threads}
    lines = [f"CPU: {peak_text}; native bf16: {'yes' if native else 'no'}; torch {torch.__version__}, "
             f"{args.threads or torch.get_num_threads()} threads; photo {Path(photo).name}; SR input "
             f"{args.size}x{args.size} LR (x8: half that); "
             + (f"{args.interleaved} interleaved rounds." if args.interleaved
                else f"{args.repeats} rounds, the fastest of each path."), ""]
    if args.quality_only == "int8":
        if not args.int8_calib:
            ap.error("--quality-only int8 needs --int8-calib (a training photo folder)")
        sr_models = [m for m in models if m in SR_MODELS and m != "sr-x8-faithful"] or list(SR_MODELS[:3])
        text = "\n".join(lines + int8_quality_rows(args.data, args.quality_images, args.int8_calib, sr_models,
                                                   args.int8_variants.split(","))) + "\n"
        print(text)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        return 0
    if args.quality_only:
        text = "\n".join(lines + quality_rows(args.data, args.quality_images, args.reference_tree,
                                              sr=args.quality_only == "all")) + "\n"
        print(text)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        return 0
    if args.interleaved:
        lines += [f"#### Interleaved in one process ({args.interleaved} rounds; ratio > 1: faster than the first path)", "",
                  *interleaved_rows(args, photo, models, bf16)]
        text = "\n".join(lines) + "\n"
        print(text)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        return 0
    sr_rows = ["| model | path | tile | s / output Mpx | vs today | peak RAM (MB) | GFLOP / output Mpx | "
               "share of CPU peak |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fill_rows = ["| model | path | s / region | vs today | peak RAM (MB) | GFLOP / region | share of CPU peak |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for mid in models:
        spec, model = load(mid)
        task = "sr" if spec.task == "sr" else "fill"
        paths: list[tuple[str, dict]] = []
        if args.baseline_tree and not mid.startswith("arch:"):
            paths.append(("today (fp32, one big tile)", {"legacy": True, "tree": args.baseline_tree,
                                                         "precision": "fp32"}))
        paths.append(("fp32", {"precision": "fp32"}))
        if bf16:
            if task == "sr":
                for t in args.tiles.split(","):
                    name = "bf16" if t == "auto" else f"bf16 tile {t}"
                    paths.append((name, {"precision": "bf16", **({} if t == "auto" else {"tile": int(t)})}))
                if args.compile:
                    paths.append(("bf16 compiled", {"precision": "bf16", "compile": True}))
            else:
                paths.append(("bf16", {"precision": "bf16"}))
        results: dict[str, list[dict]] = {name: [] for name, _ in paths}
        for rnd in range(args.repeats):
            for name, extra in paths:
                size = args.size if spec.scale <= 4 else args.size // 2  # x8: the same output size as x4
                res = run_job({**base, "size": size, "model": mid, "task": spec.task, **extra})
                results[name].append(res)
                print(f"[{mid} round {rnd + 1}] {name}: {res}", file=sys.stderr, flush=True)
        key = "s_per_mpx" if task == "sr" else "s_per_region"

        def best(name: str) -> dict | None:
            ok = [r for r in results[name] if "error" not in r]
            return min(ok, key=lambda r: r[key]) if ok else None

        ref = best(paths[0][0])
        if task == "sr":
            gf = gflop_per_out_mpx(model, spec.scale)
            margin = int(getattr(model, "receptive_margin", 24))
        else:
            gf = fill_gflop(model, photo)
        for name, extra in paths:
            r = best(name)
            if r is None:
                err = results[name][-1].get("error", "failed")
                (sr_rows if task == "sr" else fill_rows).append(f"| {mid} | {name} | failed: {err} |")
                continue
            ratio = f"{ref[key] / r[key]:.2f}x" if ref is not None else "-"
            p = peak * (2 if "bf16" in name else 1)
            if task == "sr":
                t = r["tile"]
                # work per output pixel including the tile's context border (capped by the crop)
                size = args.size if spec.scale <= 4 else args.size // 2
                side = min(t + 2 * margin, size)
                eff = gf * (side / min(t, size)) ** 2
                share = eff / r[key] / p
                sr_rows.append(f"| {mid} | {name} | {t} | {r[key]:.2f} | {ratio} | {r['peak_mb']:.0f} | "
                               f"{gf:.0f} ({eff:.0f} with context) | {100 * share:.0f}% |")
            else:
                share = gf / r[key] / p
                fill_rows.append(f"| {mid} | {name} | {r[key]:.2f} | {ratio} | {r['peak_mb']:.0f} | {gf:.0f} | "
                                 f"{100 * share:.0f}% |")
        if task == "sr":
            log_tile = cpu_tile(model, spec.scale)
            print(f"{mid}: cpu_tile {log_tile}", file=sys.stderr)
    lines += ["#### Upscale", "", *sr_rows, "", "#### Fill (one brushed region on the full photo)", "", *fill_rows]
    if args.quality_images and bf16:
        lines += ["", f"#### bf16 against fp32 (SR protocol, first {args.quality_images} photos-val images)", "",
                  *quality_rows(args.data, args.quality_images, args.reference_tree)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
